// Command lines of escp and every peer for one run: what to spawn, where the copy must land,
// and how to read the tool's own rate. All ssh-based tools reach the same sshd through one
// generated ssh_config (`-F`): the original EScp takes only one `-o`, so a config file is
// the one form every tool accepts.
import { writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ESCP_MAIN, ESCP_REMOTE_CMD } from "../../harness/escp-run.ts";
import type { Tool } from "../lib/results.ts";
import type { Materialized } from "./datasets.ts";
import type { CaseSpec } from "./scenarios.ts";

/** Where transfers go: the sshd (loopback or in namespace b) and how to reach it. */
export interface Endpoint {
  kind: "loopback" | "wan" | "multihost";
  host: string;
  /** multihost: the host the source is read on (`user@sourceHost:SRC`; the destination is `host`). */
  sourceHost?: string;
  user: string;
  port: number;
  identity: string;
  /** ssh_config file for scp, sftp, rsync -e ssh, ssh, the original EScp. */
  sshConfig: string;
  /** escp's own flags that reach the sshd (-P, -i, -o ...). */
  escpSshArgs: string[];
  /** Prefix that runs a sender-side command where the sender lives ([] or ip netns exec a). */
  senderPrefix: string[];
  /** The sshd listener: receivers are its descendants. */
  receiverRoot: number | null;
  /** Scratch directory for batch files. */
  scratch: string;
}

export interface RunCommand {
  argv: string[];
  /** The path the copy must have (file or tree root). */
  dst: string;
  /** True when the receiver writes nothing (dummy engine): verified by exit status + no files. */
  nothingWritten: boolean;
  /** The tool's own seconds for the transfer, from its output (escp / EScp summary line). */
  toolSeconds?: (stdout: string) => number | null;
}

export const SSH_CLIENT_OPTIONS = ["StrictHostKeyChecking no", "UserKnownHostsFile /dev/null", "BatchMode yes", "LogLevel ERROR", "IdentitiesOnly yes"];

/** Writes an ssh_config that logs every host in as the fixture's user with its key. */
export function writeSshConfig(path: string, o: { port: number; user: string; identity: string }): string {
  const lines = ["Host *", `  Port ${o.port}`, `  User ${o.user}`, `  IdentityFile ${o.identity}`, ...SSH_CLIENT_OPTIONS.map((l) => `  ${l}`)];
  writeFileSync(path, `${lines.join("\n")}\n`, { mode: 0o600 });
  return path;
}

/** Single-quotes for sh. */
export const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Seconds from an escp/EScp summary line: `Sent    : … in MM:SS.ff` (or HH:MM:SS.ff; a pull
 *  says `Received:`). */
export function summarySeconds(stdout: string): number | null {
  const lines = stdout.split(/[\r\n]+/).filter((l) => /^\s*(Sent|Received)\b/.test(l));
  const last = lines.at(-1);
  if (last === undefined) return null;
  const clock = / in (?:(\d+):)?(\d+):(\d+(?:\.\d+)?)/.exec(last);
  if (clock) return Number(clock[1] ?? 0) * 3600 + Number(clock[2]) * 60 + Number(clock[3]);
  const secs = / in (\d+(?:\.\d+)?)\s*s\b/.exec(last);
  return secs ? Number(secs[1]) : null;
}

/** Whether escp/EScp flags select an engine whose receiver writes nothing. */
function dummyReceiver(flags: readonly string[]): boolean {
  const i = flags.indexOf("--ioengine");
  const v = i >= 0 ? flags[i + 1] : flags.find((f) => f.startsWith("--ioengine="))?.slice("--ioengine=".length);
  if (v === undefined) return false;
  const [tx, rx] = v.split("::");
  return (rx ?? tx) === "dummy";
}

/** Which tools need which dataset kind; dd copies one file only. */
export function toolFits(tool: Tool, kind: "file" | "tree"): boolean {
  return !(tool === "dd" && kind === "tree");
}

/** Per-run additions to an escp command line. */
export interface EscpExtras {
  /** --logfile PATH (the initiator writes PATH.client, the receiver PATH.server). */
  logfile?: string;
  /** NAME=value words for the remote escp's environment, beyond the case's own remoteEnv. */
  remoteEnv?: string[];
}

/** The -D value: the case's remote environment, then this checkout's escp. */
export function remoteEscpCommand(c: CaseSpec, extra: EscpExtras = {}): string {
  return [...(c.remoteEnv ?? []), ...(extra.remoteEnv ?? []), ESCP_REMOTE_CMD].join(" ");
}

/** The command that copies `ds` into `runDir` (an existing empty directory). */
export function buildCommand(
  c: CaseSpec,
  ds: Materialized,
  runDir: string,
  ep: Endpoint,
  peerEscp: string | undefined,
  n: number,
  extra: EscpExtras = {},
): RunCommand {
  const tree = ds.kind === "tree";
  const dst = join(runDir, ds.destName);
  // scp semantics: a file into an existing directory lands inside it; -r dir to a new path
  // becomes that path with dir's contents.
  const remoteDst = tree ? dst : `${runDir}/`;
  const r = tree ? ["-r"] : [];
  const pre = ep.senderPrefix;
  // Third party: the source is read on another host (the hosts share this file system).
  const from = ep.sourceHost !== undefined ? `${ep.user}@${ep.sourceHost}:${ds.source}` : ds.source;
  switch (c.tool) {
    case "escp": {
      const remote = remoteEscpCommand(c, extra);
      const flags = [...(extra.logfile !== undefined ? ["--logfile", extra.logfile] : []), ...c.flags];
      if (c.pull) {
        // The same copy the other way: the sshd's side reads the dataset, this side writes it.
        return {
          argv: [
            ...pre,
            process.execPath,
            ESCP_MAIN,
            ...ep.escpSshArgs,
            "-D",
            remote,
            ...r,
            ...flags,
            `${ep.user}@${ep.host}:${ds.source}`,
            tree ? dst : `${runDir}/`,
          ],
          dst,
          nothingWritten: dummyReceiver(c.flags),
          toolSeconds: summarySeconds,
        };
      }
      if (c.stdin) {
        if (tree) throw new Error("a stdin case needs a one-file dataset");
        // `cat FILE | escp - host:DIR/NAME`: the pipeline runs in one process group (its CPU counts).
        const escpArgv = [process.execPath, ESCP_MAIN, ...ep.escpSshArgs, "-D", remote, ...flags, "-", `${ep.user}@${ep.host}:${dst}`];
        return {
          argv: [...pre, "sh", "-c", 'f="$1"; shift; cat -- "$f" | "$@"', "sh", from, ...escpArgv],
          dst,
          nothingWritten: dummyReceiver(c.flags),
          toolSeconds: summarySeconds,
        };
      }
      return {
        argv: [...pre, process.execPath, ESCP_MAIN, ...ep.escpSshArgs, "-D", remote, ...r, ...flags, from, `${ep.user}@${ep.host}:${remoteDst}`],
        dst,
        nothingWritten: dummyReceiver(c.flags),
        toolSeconds: summarySeconds,
      };
    }
    case "escp-orig":
      if (peerEscp === undefined) throw new Error("escp-orig needs --peer-escp");
      // The original keeps the top directory under -r (`-r dir host:/d` → /d/dir/...).
      return {
        // It ignores the Port of an ssh_config (-F): the port goes on its command line (-P).
        argv: [
          ...pre,
          peerEscp,
          "-P",
          String(ep.port),
          "-F",
          ep.sshConfig,
          "-D",
          peerEscp,
          ...r,
          ...c.flags,
          ds.source,
          `${ep.host}:${tree ? runDir : `${runDir}/`}`,
        ],
        dst: tree ? join(runDir, basename(ds.source)) : dst,
        nothingWritten: dummyReceiver(c.flags),
        toolSeconds: summarySeconds,
      };
    case "scp":
      return { argv: [...pre, "scp", "-F", ep.sshConfig, ...r, ...c.flags, from, `${ep.host}:${remoteDst}`], dst, nothingWritten: false };
    case "sftp": {
      const batch = join(ep.scratch, `sftp-batch-${n}`);
      writeFileSync(batch, `put ${tree ? "-r " : ""}"${ds.source}" "${dst}"\n`);
      return { argv: [...pre, "sftp", "-F", ep.sshConfig, ...c.flags, "-b", batch, ep.host], dst, nothingWritten: false };
    }
    case "rsync":
      return {
        argv: [
          ...pre,
          "rsync",
          ...r,
          ...c.flags,
          "-e",
          `ssh -F ${ep.sshConfig}`,
          tree ? `${ds.source}/` : ds.source,
          tree ? `${ep.host}:${dst}/` : `${ep.host}:${runDir}/`,
        ],
        dst,
        nothingWritten: false,
      };
    case "tar-ssh": {
      const f = c.flags.join(" ");
      const [from, what, into] = tree ? [ds.source, ".", dst] : [dirname(ds.source), basename(ds.source), runDir];
      const remote = `mkdir -p ${sq(into)} && tar ${f} -C ${sq(into)} -xf -`;
      const script = `set -o pipefail; tar ${f} -C ${sq(from)} -cf - ${sq(what)} | ssh -F ${sq(ep.sshConfig)} ${sq(ep.host)} ${sq(remote)}`;
      return { argv: [...pre, "bash", "-c", script], dst, nothingWritten: false };
    }
    case "dd":
      return { argv: [...pre, "dd", `if=${ds.source}`, `of=${dst}`, ...c.flags, "status=none"], dst, nothingWritten: false };
    case "cp":
      return { argv: [...pre, "cp", ...c.flags, ds.source, dst], dst, nothingWritten: false };
    case "iperf3":
      throw new Error("iperf3 runs through runIperf");
  }
}

/** The binary a case needs on PATH (or the given path), for the "missing peer" check. */
export function binaryOf(tool: Tool, peerEscp: string | undefined): string | undefined {
  switch (tool) {
    case "escp":
      return undefined;
    case "escp-orig":
      return peerEscp;
    case "tar-ssh":
      return "tar";
    default:
      return tool;
  }
}
