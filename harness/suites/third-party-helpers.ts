// Shared steps of the third-party (-3) suites on the multi-host fixture (harness/multihost.ts):
// run the local escp against the fixture's hosts, read its output, look for leftovers on the
// hosts' side (temporaries, still-running servers), and stop a server at a protocol state
// until the test has done something to the network (a FIFO handshake, no sleeps).
import { expect } from "bun:test";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN, ESCP_REMOTE_CMD, runEscp, type RunEscpResult } from "../escp-run.ts";
import { type MultiHost, netnsInode, pidsInNetns } from "../multihost.ts";
import { formatBytes } from "../../src/cli/progress.ts";

/** `escp -F <fixture config> -D <this checkout> --escp_port 0 --timeout T ARGS…` from the root
 *  namespace. `remote` replaces the -D value (e.g. with NAME=value words in front); `wrap`
 *  prefixes the local escp's command (e.g. setpriv). */
export async function x3(
  fx: MultiHost,
  args: readonly string[],
  o: { remote?: string; timeout?: number; timeoutMs?: number; onSpawn?: (pid: number) => void; wrap?: readonly string[] } = {},
): Promise<RunEscpResult> {
  const argv = ["-F", fx.sshConfig, "-D", o.remote ?? ESCP_REMOTE_CMD, "--escp_port", "0", "--timeout", String(o.timeout ?? 20), ...args];
  return await runEscp(argv, { timeoutMs: o.timeoutMs ?? 150_000, ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}), ...(o.wrap ? { wrap: o.wrap } : {}) });
}

/** The -D value that runs this checkout with some environment set on both servers. */
export function remoteWith(env: Record<string, string>): string {
  return [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ESCP_REMOTE_CMD].join(" ");
}

/** Fails with the whole output when the exit status is not `code`. */
export function expectExit(r: RunEscpResult, code: number): void {
  if (r.code !== code) throw new Error(`escp exited ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Non-empty stderr lines. */
export function errLines(r: RunEscpResult): string[] {
  return r.stderr.split("\n").filter((l) => l.trim() !== "");
}

/** The one summary line escp prints without -q: `Sent    : <bytes> in N files at … in MM:SS.ff[, F failed]`. */
export function expectSummary(r: RunEscpResult, s: { bytes: number; files: number; failed?: number }): void {
  const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
  expect(lines).toHaveLength(1);
  const noun = s.files === 1 ? "file" : "files";
  const failed = s.failed ? `, ${s.failed} failed` : "";
  const head = `Sent    : ${formatBytes(s.bytes)} in ${s.files} ${noun} at `;
  expect(lines[0]?.startsWith(head) ? head : lines[0]).toBe(head);
  expect(lines[0]).toMatch(new RegExp(` in \\d\\d:\\d\\d\\.\\d\\d${failed}$`));
}

/** Relative paths of everything under dir, never following a symbolic link (an -a copy may
 * hold links to ".." that a recursive readdir would follow without end). */
function walkNoFollow(dir: string): string[] {
  const out: string[] = [];
  const visit = (rel: string): void => {
    for (const d of readdirSync(rel === "" ? dir : join(dir, rel), { withFileTypes: true })) {
      const r = rel === "" ? d.name : `${rel}/${d.name}`;
      out.push(r);
      if (d.isDirectory()) visit(r);
    }
  };
  visit("");
  return out;
}

/** Every `.escp-*` name (a named temporary) anywhere under dir. */
export function temporariesUnder(dir: string): string[] {
  return walkNoFollow(dir).filter((p) => p.split("/").some((n) => n.startsWith(".escp-")));
}

/** Relative paths of everything under dir, sorted. */
export function listing(dir: string): string[] {
  return walkNoFollow(dir).sort();
}

/** A fresh directory under root (the hosts share this file system: each case its own path). */
export function freshDir(root: string, name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Processes of this checkout's `escp --server` still alive in the fixture's host namespaces. */
export function serversLeft(fx: MultiHost): number[] {
  const inodes = new Set(fx.hosts.map((h) => netnsInode(h.ns)).filter((i): i is number => i !== undefined));
  return pidsInNetns(inodes).filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      return state !== "Z" && argv.includes(ESCP_MAIN) && argv.includes("--server");
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Resolves once no server of this checkout runs on any host; fails after `ms`. Servers end on
 *  their own (their control channel closed, or their --timeout), so this polls that condition. */
export async function expectServersGone(fx: MultiHost, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  let left = serversLeft(fx);
  while (left.length > 0 && Date.now() < deadline) {
    await Bun.sleep(50); // polling the condition "no server left", not synchronising on time
    left = serversLeft(fx);
  }
  expect(left).toEqual([]);
}

/** A rendezvous with a server stopped at a fault point: the server runs `script` there
 *  (ESCP_FAULT_EXEC), which announces itself on one FIFO and blocks reading the other. */
export class Rendezvous {
  readonly script: string;
  private readonly arrived: string;
  private readonly release: string;
  private waiter: Bun.Subprocess<"ignore", "pipe", "ignore"> | undefined;

  constructor(dir: string, name: string) {
    this.arrived = join(dir, `${name}.arrived`);
    this.release = join(dir, `${name}.release`);
    this.script = join(dir, `${name}.sh`);
    for (const f of [this.arrived, this.release]) {
      const r = Bun.spawnSync(["mkfifo", "-m", "600", f], { stdout: "ignore", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`mkfifo ${f}: ${r.stderr.toString().trim()}`);
    }
    Bun.spawnSync([
      "sh",
      "-c",
      `printf '#!/bin/sh\\necho here > %s\\ncat %s > /dev/null\\n' "$1" "$2" > "$3" && chmod 700 "$3"`,
      "sh",
      this.arrived,
      this.release,
      this.script,
    ]);
  }

  /** Resolves once the server reached the fault point; rejects if `gone` settles first (the run
   *  ended without getting there). */
  async reached(gone: Promise<unknown>): Promise<void> {
    // A reader in another process: opening a FIFO blocks, which must not stall this event loop.
    const w = Bun.spawn(["cat", this.arrived], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    this.waiter = w;
    const got = new Response(w.stdout).text();
    const r = await Promise.race([
      got.then(() => "here" as const),
      gone.then(
        () => "gone" as const,
        () => "gone" as const,
      ),
    ]);
    if (r === "gone") {
      w.kill("SIGKILL");
      throw new Error("the run ended before the server reached its fault point");
    }
  }

  /** Lets the server go on (a writer in another process, for the same reason). */
  async go(): Promise<void> {
    const w = Bun.spawn(["sh", "-c", `echo go > "$1"`, "sh", this.release], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const t = setTimeout(() => w.kill("SIGKILL"), 30_000); // nobody reading: the server is gone
    await w.exited;
    clearTimeout(t);
  }

  /** Kills a reader still waiting (a failed test). */
  dispose(): void {
    this.waiter?.kill("SIGKILL");
  }
}
