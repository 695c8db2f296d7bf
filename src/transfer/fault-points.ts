// Named protocol states where the fault-injection harness can act on this process, so tests
// prove what each side does at that exact point:
//   ESCP_FAULT_KILL_AT=<role>:<state>   SIGKILL this process there (role = the process's DATA
//   role: sender = the data source, receiver = the sink; in a pull the server is the sender);
//   ESCP_FAULT_KILL_BYTES=<role>:<n>[:TERM]   SIGKILL (or SIGTERM) this process once its data
//   role has moved n file bytes or more (resume tests: a receiver dying anywhere in a file, or
//   stopped by a signal it handles);
//   ESCP_FAULT_EXEC_AT=<role>:<state> with ESCP_FAULT_EXEC="<sh command>"   run it once there
//   (e.g. delete or grow a source file mid-send);
//   ESCP_FAULT_CORRUPT_DIGEST=<byte>   the sender reports a BLAKE3 with byte <byte> (0..31)
//   flipped for every file (a mismatch is caught, named, and never given its final name); its
//   files travel one by one (a bundled file's digest is packed by libescp; its own fault build
//   covers that: test_bundle, ESCP_FI_DIGEST_FAIL_AT);
//   ESCP_FAULT_CORRUPT_RESULT=<byte>   the receiver reports success with such a digest (the
//   sender must fail the file);
//   ESCP_FAULT_BUNDLE_RESULT=stray|twice|count   the receiver's bundle reports lie: one more
//   for a bundle never sent, every one twice, or one file too many (the sender must end the
//   session with E_PROTOCOL, naming the bundle);
//   ESCP_FAULT_DATA_PORT=<port>   the sender connects its control and data streams to
//   127.0.0.1:<port> (a fault proxy, harness/faults/net-proxy.ts) instead of the address
//   and port the receiver reported;
//   ESCP_FAULT_REPLY_MINOR=<n>   a server answers session init as a peer of protocol 2.<n>
//   (an older escp: the initiator must refuse what that peer cannot take, e.g. --shard ranges);
//   ESCP_FAULT_KEY_SHA256=<path>   the sender writes the hex SHA-256 of the session key (never
//   the key) to <path>, so a test can recognise the key wherever it might have leaked.
// Costs one cached compare when unset.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import type { BundleResultMsg } from "../control/messages.ts";

export type Role = "sender" | "receiver";
export type ProtocolState = "init" | "filelist" | "midblock" | "verify" | "close";

const killAt = process.env.ESCP_FAULT_KILL_AT ?? "";
const execAt = process.env.ESCP_FAULT_EXEC_AT ?? "";
let execDone = false;

export function faultPoint(role: Role, state: ProtocolState): void {
  const here = `${role}:${state}`;
  if (killAt === here) process.kill(process.pid, "SIGKILL");
  if (execAt === here && !execDone) {
    execDone = true;
    Bun.spawnSync(["sh", "-c", process.env.ESCP_FAULT_EXEC ?? "true"], { stdout: "ignore", stderr: "inherit" });
  }
}

const [killBytesRole, killBytesAt, killBytesSignal] = (process.env.ESCP_FAULT_KILL_BYTES ?? "").split(":");
const killBytes = Number(killBytesAt ?? "");
let killBytesSent = false;

/** ESCP_FAULT_KILL_BYTES: called with the role's file bytes so far, every pass of its loop. */
export function faultBytes(role: Role, bytes: number): void {
  if (killBytesRole !== role || !Number.isFinite(killBytes) || bytes < killBytes || killBytesSent) return;
  killBytesSent = true;
  process.kill(process.pid, killBytesSignal === "TERM" ? "SIGTERM" : "SIGKILL");
}

export const faultsArmed = killAt !== "" || execAt !== "" || killBytesRole !== "";

function byteToFlip(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n < 32 ? n : undefined;
}

const corruptSent = byteToFlip("ESCP_FAULT_CORRUPT_DIGEST");
const corruptResult = byteToFlip("ESCP_FAULT_CORRUPT_RESULT");

function flipped(d: Uint8Array, at: number | undefined): Uint8Array {
  if (at === undefined || d.length !== 32) return d;
  const bad = d.slice();
  bad[at] = (bad[at] ?? 0) ^ 0x5a;
  return bad;
}

/** Fault injection lies about the sender's digests: no bundles then (see above). */
export const corruptsSentDigests = corruptSent !== undefined;

/** The digest the sender reports in FileDone: the real one, or (fault injection) a wrong one. */
export function reportedDigest(d: Uint8Array): Uint8Array {
  return flipped(d, corruptSent);
}

/** The digest the receiver reports with a success: the real one, or (fault injection) a wrong one. */
export function reportedResultDigest(d: Uint8Array): Uint8Array {
  return flipped(d, corruptResult);
}

const bundleLie = process.env.ESCP_FAULT_BUNDLE_RESULT ?? "";

/** The receiver's BundleResults of one pass, as sent: the real ones, or (fault injection) lies. */
export function reportedBundleResults(results: BundleResultMsg[]): BundleResultMsg[] {
  if (bundleLie === "twice") return results.flatMap((r) => [r, r]);
  if (bundleLie === "count") {
    // well formed: a digest for the extra file too
    return results.map((r) => ({
      ...r,
      count: r.count + 1,
      digests: r.digests.length === 0 ? r.digests : Uint8Array.from([...r.digests, ...new Uint8Array(32)]),
    }));
  }
  if (bundleLie === "stray" && results.length > 0) return [...results, { ...results[0]!, bundle: 1_000_000_007 }];
  return results;
}

const dataPort = Number(process.env.ESCP_FAULT_DATA_PORT ?? "");

/** Where the sender connects its T+1 streams under fault injection, or undefined (normal). */
export function dataPortOverride(): { address: string; port: number } | undefined {
  if (!Number.isInteger(dataPort) || dataPort <= 0 || dataPort > 65535) return undefined;
  return { address: "127.0.0.1", port: dataPort };
}

const keyDigestPath = process.env.ESCP_FAULT_KEY_SHA256 ?? "";

/** Test hook: record SHA-256(key) (a one-way fingerprint; the key itself never leaves memory). */
export function keyDigestHook(key: Uint8Array): void {
  if (keyDigestPath === "") return;
  writeFileSync(keyDigestPath, `${createHash("sha256").update(key).digest("hex")}\n`, { mode: 0o600 });
}

/** ESCP_FAULT_REPLY_MINOR: the protocol minor a server claims in its reply (else undefined). */
export function faultReplyMinor(): number | undefined {
  const v = process.env.ESCP_FAULT_REPLY_MINOR;
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}
