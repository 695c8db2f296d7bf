// A real OpenSSH server on 127.0.0.1 (or ::1 on request) for end-to-end tests: throwaway host and
// user keys, config and pid file in a unique temp dir, started on a free port, stopped and removed after.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { homedir } from "node:os";
import { makeTmpDir, onExitCleanup, removeTmpDir } from "./tmp-dir.ts";

/** Loopback address the server listens on. */
export type SshdListen = "127.0.0.1" | "::1";

export interface SshdOptions {
  /** Default 127.0.0.1; "::1" for IPv6 tests (the only address it then listens on). */
  listen?: SshdListen;
  /** authorized_keys options put before the test key, e.g. a forced command:
   *  `command="escp --server --restrict /srv",no-pty` (see forcedCommand()). */
  keyOptions?: string;
  /** The login shell reads an empty ~/.bashrc: sshd runs in a private mount namespace where
   *  the user's ~/.bashrc is bind-mounted over by an empty file (benchmarks: a .bashrc that
   *  runs e.g. `pyenv init` adds ≈ 0.7 s to every ssh command, for every tool alike). */
  quietLogin?: boolean;
}

/** An authorized_keys `command="..."` option running `cmd` whatever the client asks for,
 *  plus the usual restrictions of a transfer-only key. */
export function forcedCommand(cmd: string): string {
  return `command="${cmd.replace(/[\\"]/g, (c) => `\\${c}`)}",no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-pty`;
}

export interface SshdFixture {
  host: SshdListen;
  port: number;
  user: string;
  /** Private key path accepted by the server (ed25519, no passphrase). */
  identity: string;
  /** escp flags that reach this server: -P port -i identity plus -o options. */
  sshArgs: string[];
  dir: string;
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";
const START_DEADLINE_MS = 20_000;
const BIND_ATTEMPTS = 5;

/** ssh options for a throwaway server: no known_hosts, no prompts, no agent keys. */
const CLIENT_OPTIONS = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes", "LogLevel=ERROR", "IdentitiesOnly=yes"];

/** Login name of this process. Bun's os.userInfo() says "unknown" when $USER is unset. */
function currentUser(): string {
  const proc = Bun.spawnSync(["id", "-un"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const name = proc.stdout.toString().trim();
  if (proc.exitCode !== 0 || name === "") throw new Error(`id -un failed: ${proc.stderr.toString().trim()}`);
  return name;
}

async function freePort(listen: SshdListen): Promise<number> {
  return await new Promise<number>((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, listen, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** A throwaway ed25519 key pair at path (and path.pub), no passphrase. */
export async function keygen(path: string): Promise<void> {
  const proc = Bun.spawn(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "escp-test", "-f", path], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`ssh-keygen failed for ${path} (exit ${code}): ${err.trim()}`);
}

/** The sshd_config of a private test sshd: key-only root login, sftp, many sessions. Also
 *  used by the WAN benchmark's sshd inside a namespace (hostKey/listen differ) and by the
 *  multi-host fixture (harness/multihost.ts: its own authorized_keys, the sftp-server binary). */
export function sshdConfigText(o: { dir: string; listen: string; port: number; hostKey: string; authorizedKeys?: string; sftp?: string }): string {
  return (
    [
      `ListenAddress ${o.listen === "::1" ? "[::1]" : o.listen}`,
      `Port ${o.port}`,
      `HostKey ${o.hostKey}`,
      `PidFile ${join(o.dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${o.authorizedKeys ?? join(o.dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "StrictModes no",
      "UsePAM no",
      "AcceptEnv none",
      `Subsystem sftp ${o.sftp ?? "internal-sftp"}`,
      "MaxStartups 100:30:200", // suites open many sessions at once
      "MaxSessions 100",
    ].join("\n") + "\n"
  );
}

function writeConfig(dir: string, port: number, listen: SshdListen): string {
  const cfg = join(dir, "sshd_config");
  writeFileSync(cfg, sshdConfigText({ dir, listen, port, hostKey: join(dir, "host_ed25519") }));
  return cfg;
}

type StartOutcome = { ok: true } | { ok: false; bindFailed: boolean; reason: string };

/** Reads sshd's stderr until it reports listening, it exits, or the deadline passes. */
async function waitListening(proc: Bun.Subprocess<"ignore", "ignore", "pipe">, port: number, listen: SshdListen, log: { text: string }): Promise<StartOutcome> {
  const ready = `Server listening on ${listen} port ${port}`;
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<StartOutcome>((res) => {
    timer = setTimeout(() => res({ ok: false, bindFailed: false, reason: `no "${ready}" within ${START_DEADLINE_MS} ms` }), START_DEADLINE_MS);
  });
  const scan = (async (): Promise<StartOutcome> => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      log.text += decoder.decode(value, { stream: true });
      if (log.text.includes(ready)) return { ok: true };
    }
    await proc.exited;
    const bindFailed = /Address already in use|Cannot bind any address/.test(log.text);
    return { ok: false, bindFailed, reason: `sshd exited with status ${proc.exitCode}` };
  })();
  const outcome = await Promise.race([scan, deadline]);
  clearTimeout(timer);
  if (outcome.ok) {
    // Keep draining so a chatty sshd never blocks on a full pipe; keep the log for failures.
    void (async () => {
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done || value === undefined) return;
        log.text = (log.text + decoder.decode(value, { stream: true })).slice(-65536);
      }
    })();
  }
  return outcome;
}

/** argv run with the user's ~/.bashrc hidden behind an empty file (a private mount
 *  namespace: nothing changes outside it), or argv itself when there is no ~/.bashrc. */
function quietLoginArgv(dir: string, argv: string[]): string[] {
  const rc = join(homedir(), ".bashrc");
  if (!existsSync(rc)) return argv;
  const empty = join(dir, "empty-bashrc");
  writeFileSync(empty, "");
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" "$1" && shift && exec "$@"', empty, rc, ...argv];
}

/** Starts sshd and resolves once it listens; throws with sshd's stderr if it cannot. */
export async function startSshd(opts: SshdOptions = {}): Promise<SshdFixture> {
  const listen = opts.listen ?? "127.0.0.1";
  if (!existsSync(SSHD)) throw new Error(`${SSHD} not found: run \`npm run setup\` (installs openssh-server)`);
  const dir = makeTmpDir("sshd");
  try {
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege-separation dir
    const identity = join(dir, "id_ed25519");
    await Promise.all([keygen(join(dir, "host_ed25519")), keygen(identity)]);
    const key = await Bun.file(`${identity}.pub`).text();
    writeFileSync(join(dir, "authorized_keys"), opts.keyOptions ? `${opts.keyOptions} ${key}` : key);
    let lastError = "";
    for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
      const port = await freePort(listen);
      const cfg = writeConfig(dir, port, listen);
      const argv = [SSHD, "-D", "-e", "-f", cfg];
      const proc = Bun.spawn(opts.quietLogin ? quietLoginArgv(dir, argv) : argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
      const kill = (): void => {
        try {
          proc.kill("SIGKILL");
        } catch {
          // already exited
        }
      };
      const unregister = onExitCleanup(kill);
      const log = { text: "" };
      const outcome = await waitListening(proc, port, listen, log);
      if (outcome.ok) return makeFixture(listen, dir, port, identity, proc, unregister);
      kill();
      await proc.exited;
      unregister();
      lastError = `${outcome.reason}; sshd stderr:\n${log.text.trim()}`;
      if (!outcome.bindFailed) break;
    }
    throw new Error(`sshd fixture failed to start: ${lastError}`);
  } catch (err) {
    removeTmpDir(dir);
    throw err;
  }
}

/** Pids whose parent is `pid` (sshd's per-connection children), from /proc. */
function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) kids.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return kids;
}

function makeFixture(host: SshdListen, dir: string, port: number, identity: string, proc: Bun.Subprocess, unregister: () => void): SshdFixture {
  let stopped: Promise<void> | undefined;
  return {
    host,
    port,
    user: currentUser(),
    identity,
    sshArgs: ["-P", String(port), "-i", identity, ...CLIENT_OPTIONS.flatMap((o) => ["-o", o])],
    dir,
    stop(): Promise<void> {
      stopped ??= (async () => {
        const sessions = childrenOf(proc.pid); // sessions left open by a failed test
        proc.kill("SIGTERM"); // sshd -D closes its listener and exits on SIGTERM
        await proc.exited;
        for (const pid of sessions) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        unregister();
        removeTmpDir(dir);
      })();
      return stopped;
    },
  };
}

/** Plain `ssh` argv (without the remote command) that logs in to the fixture. */
export function sshCommand(fx: SshdFixture): string[] {
  return ["ssh", "-p", String(fx.port), "-i", fx.identity, ...CLIENT_OPTIONS.flatMap((o) => ["-o", o]), `${fx.user}@${fx.host}`];
}
