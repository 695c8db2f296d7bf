// The system-ssh transport: build the ssh argv (pure), spawn it as a control channel, and turn
// ssh's exit status and stderr into one-line EscpErrors naming the host.
import { EscpError } from "../errors/escp-error.ts";
import type { ControlChannel } from "./channel.ts";
import { spawnChannel } from "./local.ts";

export interface SshOpts {
  ssh: string;
  port: number;
  identity?: string;
  sshConfig?: string;
  jumpHost?: string;
  cipher?: string;
  agent: boolean;
  ipv4: boolean;
  ipv6: boolean;
  batchMode: boolean;
  sshOptions: string[];
}
export interface SshTarget {
  host: string;
  user?: string;
  port?: number;
}

const DEFAULT_PORT = 22;
const ENV_ASSIGN_RE = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;

/** POSIX-shell single-quote one word: `it's` → `'it'\''s'`. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The remote command as ONE ssh argument. remoteCmd[0] is the -D value and may be a command
 * with arguments (`bun /opt/escp/src/cli/main.ts`, `FOO=1 escp`): it is split on whitespace;
 * leading NAME=value words stay assignments (only the value is quoted). Other words are
 * quoted whole.
 */
export function remoteCommandString(remoteCmd: string[]): string {
  const [head = "", ...rest] = remoteCmd;
  const words = head.split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) throw new EscpError("E_USAGE", "the remote escp command (-D) is empty");
  const out: string[] = [];
  let leading = true;
  for (const w of words) {
    const m = leading ? ENV_ASSIGN_RE.exec(w) : null;
    if (m) out.push(`${m[1]}=${shellQuote(m[2] ?? "")}`);
    else {
      leading = false;
      out.push(shellQuote(w));
    }
  }
  return [...out, ...rest.map(shellQuote)].join(" ");
}

/**
 * argv for the system ssh. -p is passed only for a non-default port (target.port wins over
 * o.port) so a Port in ~/.ssh/config still applies. EScp differs: it always passed -p and -t.
 */
export function buildSshArgv(o: SshOpts, target: SshTarget, remoteCmd: string[]): string[] {
  const argv = [o.ssh, "-T"];
  const port = target.port ?? o.port;
  if (port !== DEFAULT_PORT && port !== 0) argv.push("-p", String(port));
  if (o.identity !== undefined) argv.push("-i", o.identity);
  if (o.sshConfig !== undefined) argv.push("-F", o.sshConfig);
  if (o.jumpHost !== undefined) argv.push("-J", o.jumpHost);
  if (o.cipher !== undefined) argv.push("-c", o.cipher);
  if (o.agent) argv.push("-A");
  if (o.ipv4) argv.push("-4");
  if (o.ipv6) argv.push("-6");
  if (o.batchMode) argv.push("-o", "BatchMode=yes");
  for (const opt of o.sshOptions) argv.push("-o", opt);
  if (target.user !== undefined) argv.push("-l", target.user);
  // "--" ends ssh's options: a hostname can never be read as a flag.
  argv.push("--", target.host, remoteCommandString(remoteCmd));
  return argv;
}

// ssh's own "Permission denied (publickey,...)" — a shell's "escp: Permission denied" is exit 126.
const AUTH_RE = /Permission denied \(|Too many authentication failures/;
const HOSTKEY_RE = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known for/;
const UNREACHABLE_RE = /Could not resolve hostname|Connection refused|No route to host|Connection timed out|Network is unreachable|Name or service not known/;
// The remote shell (or env) could not find the command; an escp error about a path is not this.
const MISSING_RE = /command not found|^[\w./-]*(?:sh|env)\b.*: (?:not found|No such file or directory)$/;

function lastLine(stderr: string): string | undefined {
  return stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .at(-1);
}

function matching(stderr: string, re: RegExp): string | undefined {
  return stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => re.test(l) && !l.startsWith("Warning:"));
}

/** Classify why ssh (or the remote command) failed before the handshake completed. `command`
 * is the -D value: an exit status other than ssh's own 255 is that command's. */
export function classifySshFailure(exitCode: number | null, stderr: string, host: string, command?: string): EscpError {
  const facts = { errno: exitCode ?? undefined };
  const hostkey = matching(stderr, HOSTKEY_RE);
  if (hostkey) {
    // OpenSSH's changed-key banner is boxed in '@'s: say it plainly, with the known_hosts line it names.
    const offending = matching(stderr, /^Offending \S+ key in \S+/);
    const why = /REMOTE HOST IDENTIFICATION HAS CHANGED/.test(stderr)
      ? `REMOTE HOST IDENTIFICATION HAS CHANGED (possible man-in-the-middle)${offending ? `; ${offending}` : ""}`
      : hostkey;
    return new EscpError("E_SSH_HOSTKEY", `ssh to ${host}: host key verification failed: ${why}`, facts);
  }
  const auth = matching(stderr, AUTH_RE);
  if (auth) return new EscpError("E_SSH_AUTH", `ssh to ${host}: authentication failed: ${auth}`, facts);
  const unreachable = matching(stderr, UNREACHABLE_RE);
  if (unreachable) return new EscpError("E_SSH_UNREACHABLE", `ssh to ${host}: host unreachable: ${unreachable}`, facts);
  if (exitCode === 127 || matching(stderr, MISSING_RE)) {
    return new EscpError("E_REMOTE_MISSING", `escp not found on ${host}: install it or pass -D PATH`, facts);
  }
  if (exitCode === 126) {
    const why = lastLine(stderr) ?? "permission denied";
    return new EscpError("E_REMOTE_MISSING", `escp is not runnable on ${host}: ${why}`, facts);
  }
  const last = lastLine(stderr);
  if (exitCode !== null && exitCode !== 255) {
    // ssh connected and ran the command, which ended before answering session init.
    const what = `${host}: remote command ${command === undefined ? "(-D)" : `'${command}'`} exited ${exitCode} before the session started`;
    // Silent (ssh's own warnings aside): not escp, which says why it fails on stderr.
    const said = lastLine(
      stderr
        .split(/\r?\n/)
        .filter((l) => !l.trim().startsWith("Warning:"))
        .join("\n"),
    );
    if (said === undefined) return new EscpError("E_REMOTE_MISSING", `${what} (is escp installed there? -D)`, facts);
    return new EscpError("E_SSH_FAILED", `${what}: ${said}`, facts);
  }
  const status = exitCode === null ? "was killed by a signal" : `failed with exit status ${exitCode}`;
  return new EscpError("E_SSH_FAILED", `ssh to ${host} ${status}${last ? `: ${last}` : ""}`, facts);
}

/** Spawn the system ssh running the remote escp; its stdin/stdout carry ESCP1 lines; `echoStderr`
 *  gets ssh's (and so the receiver's) stderr as it arrives. */
export function openSshChannel(o: SshOpts, target: SshTarget, remoteCmd: string[], echoStderr?: (text: string) => void): ControlChannel {
  const argv = buildSshArgv(o, target, remoteCmd);
  return spawnChannel(argv, {
    ...(echoStderr ? { echoStderr } : {}),
    spawnError: (e) =>
      new EscpError("E_SSH_FAILED", `cannot run ${o.ssh} to reach ${target.host}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }),
    // A clean exit without a reply is a remote escp problem, not ssh's: keep E_HANDSHAKE.
    refine: (e, code, stderr) => (code === 0 ? e : classifySshFailure(code, stderr, target.host, remoteCmd[0])),
  });
}
