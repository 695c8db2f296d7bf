// Starts the remote (or local) receiver and runs session init over its control channel:
// ssh (system or built-in), a local child process, or a --mgmt Unix socket.
import { EscpError } from "../errors/escp-error.ts";
import type { Options } from "../config/options.ts";
import type { Endpoint } from "../cli/args.ts";
import type { ControlChannel } from "../control/channel.ts";
import { openSshChannel, classifySshFailure, type SshOpts } from "../control/ssh.ts";
import { openLocalChannel } from "../control/local.ts";
import { openMgmtChannel } from "../control/mgmt.ts";
import {
  decodeSessionReply,
  encodeSessionInit,
  ARCHIVE_MINOR,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  type SessionInit,
  type SessionReply,
} from "../control/messages.ts";
import { selfArgv } from "../runtime/self.ts";
import { faultPoint } from "./fault-points.ts";
import { term } from "../cli/progress.ts";

export interface OpenedSession {
  channel: ControlChannel;
  reply: SessionReply;
  /** Address the data streams connect to. */
  dataAddress: string;
  where: string; // "host" / "local receiver" for messages
  hostPrefix: string; // "host:" before a name on the other side in messages, or "" (local)
}

function sshOpts(o: Options, uriPort: number | undefined): SshOpts {
  return {
    ssh: o.ssh,
    port: uriPort ?? o.port,
    agent: o.agent,
    ipv4: o.ipv4,
    ipv6: o.ipv6,
    batchMode: o.batchMode,
    sshOptions: o.sshOptions,
    ...(o.identity ? { identity: o.identity } : {}),
    ...(o.sshConfig ? { sshConfig: o.sshConfig } : {}),
    ...(o.jumpHost ? { jumpHost: o.jumpHost } : {}),
    ...(o.cipher ? { cipher: o.cipher } : {}),
  };
}

function remoteCommand(o: Options): string[] {
  return [o.escp, "--server", ...(o.verbose ? ["-v"] : [])];
}

async function start(o: Options, dest: Endpoint): Promise<{ channel: ControlChannel; where: string }> {
  // -v: the receiver's debug lines arrive on its stderr; show them here.
  const echo = o.verbose ? (text: string): void => term.passthrough(text) : undefined;
  if (o.mgmt) return { channel: await openMgmtChannel(o.mgmt), where: `mgmt socket ${o.mgmt}` };
  if (dest.host === undefined) {
    const argv = [...selfArgv(), "--server", ...(o.verbose ? ["-v"] : [])];
    return { channel: openLocalChannel(argv, echo), where: "local receiver" };
  }
  const target = { host: dest.host, ...(dest.user ? { user: dest.user } : {}), ...(dest.port ? { port: dest.port } : {}) };
  if (o.builtinSsh) {
    const user = dest.user ?? process.env.USER ?? "root";
    // ssh2 (pure JS under Bun) takes ≈ 150 ms to load: only --builtin-ssh pays it.
    const { openSsh2Channel } = await import("../control/ssh2-client.ts");
    return { channel: await openSsh2Channel({ ...sshOpts(o, dest.port), user }, target, remoteCommand(o), echo), where: dest.host };
  }
  return { channel: openSshChannel(sshOpts(o, dest.port), target, remoteCommand(o), echo), where: dest.host };
}

/** Why the channel died before a reply: ssh's own words, classified. */
async function channelFailure(ch: ControlChannel, dest: Endpoint, where: string, viaSsh: boolean, cause: unknown, command?: string): Promise<EscpError> {
  const code = await Promise.race([ch.exited, Bun.sleep(2000).then(() => null)]);
  if (viaSsh && dest.host !== undefined && !(cause instanceof EscpError && cause.code === "E_VERSION")) {
    return classifySshFailure(code, ch.stderrText(), dest.host, command);
  }
  if (cause instanceof EscpError) {
    const err = ch.stderrText().trim().split("\n").pop();
    return new EscpError(cause.code, `${where}: session init failed: ${cause.message}${err ? ` (${err})` : ""}`);
  }
  return new EscpError("E_HANDSHAKE", `session init failed: ${String(cause)}`);
}

/** A control channel being started (ssh spawned, the remote escp starting): a push starts it
 * before it walks its sources, so the walk and the ssh login overlap. */
export type StartingChannel = Promise<{ channel: ControlChannel; where: string }>;

export function startChannel(o: Options, dest: Endpoint): StartingChannel {
  const p = start(o, dest);
  p.catch(() => undefined); // its failure is reported where it is awaited (openSession)
  return p;
}

/** A channel started early that will not be used (nothing to send): closed quietly. */
export async function dropChannel(starting: StartingChannel): Promise<void> {
  try {
    await (await starting).channel.close();
  } catch {
    // it never started: nothing to close
  }
}

export async function openSession(o: Options, dest: Endpoint, init: SessionInit, starting: StartingChannel = startChannel(o, dest)): Promise<OpenedSession> {
  const { channel, where } = await starting;
  let reply: SessionReply;
  try {
    const initBytes = encodeSessionInit(init);
    try {
      await channel.send(initBytes);
    } finally {
      initBytes.fill(0); // it holds the key; the line sent was built from it synchronously
    }
    faultPoint(init.role === "receiver" ? "sender" : "receiver", "init"); // this side's data role: the other one's
    reply = decodeSessionReply(await channel.recv(o.timeoutMs + 30_000));
  } catch (e) {
    const err = await channelFailure(channel, dest, where, !o.mgmt, e, o.escp);
    await channel.close();
    throw err;
  }
  if (reply.error) {
    await channel.close();
    const code = reply.error.code;
    throw new EscpError(isKnown(code) ? code : "E_REMOTE", `${where}: ${reply.error.message}`);
  }
  if (reply.versionMajor !== PROTOCOL_MAJOR) {
    await channel.close();
    throw new EscpError(
      "E_VERSION",
      `protocol version mismatch: this escp speaks ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}, ${where} speaks ${reply.versionMajor}.${reply.versionMinor}`,
    );
  }
  if ((init.archive || init.xattrs) && reply.versionMinor < ARCHIVE_MINOR) {
    await channel.close();
    const flag = init.archive ? "-a" : "--xattrs";
    throw new EscpError(
      "E_VERSION",
      `${flag}: ${where} runs escp protocol ${reply.versionMajor}.${reply.versionMinor}, which cannot ${init.archive ? "keep links and owners" : "copy extended attributes"} (2.${ARCHIVE_MINOR} or later needed: update escp there)`,
    );
  }
  const dataAddress = dest.host === undefined || o.mgmt ? reply.address || "127.0.0.1" : pickAddress(reply.address, dest.host);
  return { channel, reply, dataAddress, where, hostPrefix: dest.host === undefined ? "" : `${dest.host}:` };
}

import { isErrorCode as isKnown } from "../errors/codes.ts";

/** The receiver binds to the address the SSH connection arrived on and reports it; a
 * wildcard or empty report falls back to the host name the user gave. */
function pickAddress(reported: string, host: string): string {
  if (!reported || reported === "0.0.0.0" || reported === "::") return host.replace(/^\[|\]$/g, "");
  return reported;
}
