// The built-in SSH transport (npm ssh2, pure JS under Bun) for hosts without a system ssh: runs the
// remote escp over an exec channel and maps ssh2's failures onto the same codes as ssh.ts.
// Host keys are verified against known_hosts like OpenSSH (host-key-policy.ts) before authentication.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client, type ClientChannel, type ConnectConfig, type CipherAlgorithm } from "ssh2";
import { EscpError } from "../errors/escp-error.ts";
import { log } from "../log/logger.ts";
import { hostKeyChecker, hostKeyConfig, type HostKeyChecker } from "./host-key-policy.ts";
import { streamChannel, TextTail, within, type ControlChannel } from "./channel.ts";
import { classifySshFailure, remoteCommandString, type SshOpts, type SshTarget } from "./ssh.ts";

// machine.md: under Bun ssh2 has no native crypto; chacha20 is missing and big DH groups take
// seconds. Pin fast, working algorithms.
const KEX = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256"] as const;
const CIPHERS: readonly CipherAlgorithm[] = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"];
const DEFAULT_KEYS = ["id_ed25519", "id_ecdsa", "id_rsa"];
const READY_TIMEOUT_MS = 30_000;
const UNREACHABLE_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNRESET"]);

function unsupported(o: SshOpts): string | undefined {
  if (o.jumpHost !== undefined) return "-J (jump host)";
  if (o.sshConfig !== undefined) return "-F (ssh config file)";
  if (o.cipher !== undefined && !CIPHERS.includes(o.cipher as CipherAlgorithm)) return `-c ${o.cipher}`;
  return undefined;
}

function privateKey(o: SshOpts): Buffer | undefined {
  const candidates = o.identity !== undefined ? [o.identity] : DEFAULT_KEYS.map((k) => path.join(os.homedir(), ".ssh", k));
  for (const file of candidates) {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      if (o.identity !== undefined) {
        throw new EscpError("E_SSH_AUTH", `cannot read identity file ${file}: ${e instanceof Error ? e.message : String(e)}`, { path: file });
      }
    }
  }
  return undefined;
}

/** Whether the server's host key passed, and why not if it was refused. */
interface HostKeyGate {
  verified: boolean;
  refusal: EscpError | undefined;
}

function connectConfig(o: SshOpts & { user: string }, target: SshTarget, port: number, checker: HostKeyChecker, gate: HostKeyGate): ConnectConfig {
  const agent = process.env.SSH_AUTH_SOCK;
  return {
    host: target.host,
    port,
    username: target.user ?? o.user,
    privateKey: privateKey(o),
    // Like OpenSSH, use a running agent for authentication; -A additionally forwards it. ssh2
    // requests forwarding with the exec, which runs only after "ready" (key verified, authenticated).
    agent: agent !== undefined && agent !== "" ? agent : undefined,
    agentForward: o.agent && agent !== undefined && agent !== "",
    forceIPv4: o.ipv4 || undefined,
    forceIPv6: o.ipv6 || undefined,
    readyTimeout: READY_TIMEOUT_MS,
    algorithms: {
      kex: [...KEX],
      cipher: o.cipher !== undefined ? [o.cipher as CipherAlgorithm] : [...CIPHERS],
      serverHostKey: checker.algorithms,
    },
    // Runs during key exchange, before any authentication; false makes ssh2 abort the connection.
    hostVerifier: (key: Buffer): boolean => {
      gate.refusal ??= checker.verify(key);
      gate.verified = gate.refusal === undefined;
      return gate.verified;
    },
  };
}

/** Map an ssh2 connection error onto escp's ssh codes. */
export function classifySsh2Error(e: unknown, host: string): EscpError {
  if (e instanceof EscpError) return e;
  const err = e as { message?: string; level?: string; code?: string } | null;
  const msg = err?.message ?? String(e);
  if (err?.level === "client-authentication" || /passphrase|private key|authentication/i.test(msg)) {
    return new EscpError("E_SSH_AUTH", `ssh to ${host}: authentication failed: ${msg}`, { cause: e });
  }
  if (err?.level === "client-timeout" || (err?.code !== undefined && UNREACHABLE_CODES.has(err.code))) {
    return new EscpError("E_SSH_UNREACHABLE", `ssh to ${host}: host unreachable: ${msg}`, { cause: e });
  }
  return new EscpError("E_SSH_FAILED", `ssh to ${host} failed: ${msg}`, { cause: e });
}

function connect(conn: Client, cfg: ConnectConfig, host: string, cmd: string, gate: HostKeyGate): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    // stays attached: later errors end the stream
    conn.on("error", (e) => reject(gate.refusal ?? classifySsh2Error(e, host)));
    conn.once("ready", () => {
      if (!gate.verified) {
        // cannot happen with ssh2's verifier contract; never exec (or forward an agent) unverified
        conn.end();
        reject(gate.refusal ?? new EscpError("E_INTERNAL", `ssh to ${host}: ready before the host key was verified`));
        return;
      }
      conn.exec(cmd, (err, stream) => (err ? reject(classifySsh2Error(err, host)) : resolve(stream)));
    });
    try {
      conn.connect(cfg);
    } catch (e) {
      reject(classifySsh2Error(e, host));
    }
  });
}

function wrapExec(
  conn: Client,
  stream: ClientChannel,
  stderr: TextTail,
  host: string,
  command: string | undefined,
  echo?: (text: string) => void,
): ControlChannel {
  let exitCode: number | null = null;
  stream.on("exit", (code: number | null) => {
    exitCode = typeof code === "number" ? code : null;
  });
  const exited = new Promise<number | null>((r) => stream.once("close", () => r(exitCode)));
  stream.stderr.on("data", (d: Buffer) => {
    const text = d.toString("utf8");
    stderr.append(text);
    echo?.(text);
  });
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      stream.on("data", (d: Buffer) => c.enqueue(new Uint8Array(d)));
      stream.once("close", () => {
        try {
          c.close();
        } catch {
          /* cancelled */
        }
        conn.end();
      });
    },
  });
  return streamChannel({
    readable,
    write: (line) =>
      new Promise<void>((resolve, reject) => {
        stream.write(line, (err?: Error | null) => (err ? reject(err) : resolve()));
      }),
    stderrText: () => stderr.value,
    exited,
    async shutdown() {
      stream.end();
      if ((await within(exited, 3000)) === "timeout") stream.close();
      conn.end();
    },
    refine: async (e) => {
      const code = await within(exited, 3000);
      return code === "timeout" || code === 0 ? e : classifySshFailure(code, stderr.value, host, command);
    },
  });
}

/** Connect with the built-in client and run `remoteCmd` (quoted like ssh.ts) on the target. */
export async function openSsh2Channel(
  o: SshOpts & { user: string },
  target: SshTarget,
  remoteCmd: string[],
  echoStderr?: (text: string) => void,
): Promise<ControlChannel> {
  const bad = unsupported(o);
  if (bad !== undefined) throw new EscpError("E_USAGE", `the built-in ssh client does not support ${bad}; use the system ssh`);
  const port = target.port ?? (o.port || 22);
  const warned = new Set<string>();
  const warn = (s: string): void => {
    if (warned.has(s)) return;
    warned.add(s);
    log.warn(s);
  };
  const checker = hostKeyChecker(hostKeyConfig(o.sshOptions), target.host, port, warn);
  const gate: HostKeyGate = { verified: false, refusal: undefined };
  const conn = new Client();
  const stream = await connect(conn, connectConfig(o, target, port, checker, gate), target.host, remoteCommandString(remoteCmd), gate);
  return wrapExec(conn, stream, new TextTail(null), target.host, remoteCmd[0], echoStderr);
}
