// What the built-in ssh client does with a server's host key, like OpenSSH: the -o options it
// honours (StrictHostKeyChecking, UserKnownHostsFile, GlobalKnownHostsFile, HashKnownHosts, BatchMode)
// and the decision: a known key goes on, a changed or revoked one is always refused, a new one per policy.
import * as os from "node:os";
import * as path from "node:path";
import type { ServerHostKeyAlgorithm } from "ssh2";
import { EscpError } from "../errors/escp-error.ts";
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  keyLabel,
  knownHostLine,
  knownHostName,
  knownKeyTypes,
  readKnownHosts,
  type KnownHostEntry,
} from "./known-hosts.ts";

/** `ask` (OpenSSH's default) is `yes` here: escp never prompts. */
export type StrictMode = "yes" | "accept-new" | "no";

export interface HostKeyConfig {
  strict: StrictMode;
  /** Read in order; a new key (accept-new) is appended to the first. */
  userFiles: string[];
  /** Read only. */
  globalFiles: string[];
  /** Write new keys with hashed host names (HashKnownHosts=yes). */
  hashNew: boolean;
}

const OPTION_NAMES: Record<string, string> = {
  stricthostkeychecking: "StrictHostKeyChecking",
  userknownhostsfile: "UserKnownHostsFile",
  globalknownhostsfile: "GlobalKnownHostsFile",
  hashknownhosts: "HashKnownHosts",
  batchmode: "BatchMode",
};
const STRICT_VALUES: Record<string, StrictMode> = { yes: "yes", on: "yes", ask: "yes", "accept-new": "accept-new", no: "no", off: "no" };
const YES_NO: Record<string, boolean> = { yes: true, no: false };
const NO_FILE = "/dev/null";
const GLOBAL_FILES = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];
/** ssh2's default host key algorithms, in its order. */
const HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

function expandTilde(p: string, home: string): string {
  if (p === "~") return home;
  return p.startsWith("~/") ? path.join(home, p.slice(2)) : p;
}

/** A file list value: whitespace-separated, "double quoted" words allowed; `none` = no file. */
function fileList(value: string, home: string): string[] {
  const words = (value.match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"(.*)"$/s, "$1"));
  if (words.length === 1 && words[0]?.toLowerCase() === "none") return [];
  return words.map((w) => expandTilde(w, home));
}

function choice<T>(set: Map<string, string>, key: string, values: Record<string, T>, fallback: T): T {
  const v = set.get(key);
  if (v === undefined) return fallback;
  const lower = v.toLowerCase();
  if (!Object.hasOwn(values, lower)) {
    throw new EscpError("E_USAGE", `-o ${OPTION_NAMES[key] ?? key}=${v}: expected one of ${Object.keys(values).join(", ")}`);
  }
  return values[lower] as T;
}

/**
 * The host key settings from `-o` options (`Key=Value` or `Key Value`, keys case-insensitive; the
 * first value of a key wins, as with ssh). Any other option is E_USAGE: it needs the system ssh.
 */
export function hostKeyConfig(sshOptions: readonly string[], home: string = os.homedir()): HostKeyConfig {
  const set = new Map<string, string>();
  for (const opt of sshOptions) {
    const m = /^\s*([A-Za-z0-9]+)(?:\s*=\s*|\s+|$)(.*?)\s*$/s.exec(opt);
    const key = m?.[1]?.toLowerCase();
    if (m === null || key === undefined || !Object.hasOwn(OPTION_NAMES, key)) {
      throw new EscpError("E_USAGE", `the built-in ssh client does not support -o ${opt}; use the system ssh`);
    }
    if (m[2] === undefined || m[2] === "") throw new EscpError("E_USAGE", `-o ${opt}: missing value`);
    if (!set.has(key)) set.set(key, m[2]);
  }
  choice(set, "batchmode", YES_NO, true); // checked only: the built-in client never prompts anyway
  const user = set.get("userknownhostsfile");
  const global = set.get("globalknownhostsfile");
  return {
    strict: choice(set, "stricthostkeychecking", STRICT_VALUES, "yes"),
    userFiles: user !== undefined ? fileList(user, home) : [path.join(home, ".ssh", "known_hosts"), path.join(home, ".ssh", "known_hosts2")],
    globalFiles: global !== undefined ? fileList(global, home) : [...GLOBAL_FILES],
    hashNew: choice(set, "hashknownhosts", YES_NO, false),
  };
}

/** Host key algorithms to offer, those yielding a key type known for the host first (as OpenSSH
 *  orders them), so a host known by its RSA key is asked for that key, not a new ed25519 one. */
export function hostKeyAlgorithms(knownTypes: readonly string[]): ServerHostKeyAlgorithm[] {
  const keyType = (alg: string): string => (alg.startsWith("rsa-sha2-") ? "ssh-rsa" : alg);
  const known = HOST_KEY_ALGORITHMS.filter((a) => knownTypes.includes(keyType(a)));
  return [...known, ...HOST_KEY_ALGORITHMS.filter((a) => !known.includes(a))];
}

export interface HostKeyChecker {
  /** For ssh2's `algorithms.serverHostKey`. */
  algorithms: ServerHostKeyAlgorithm[];
  /** undefined: accept `key`; an E_SSH_HOSTKEY error: refuse it. */
  verify(key: Buffer): EscpError | undefined;
}

function refuse(host: string, why: string): EscpError {
  return new EscpError("E_SSH_HOSTKEY", `ssh to ${host}: host key verification failed: ${why}`);
}

const where = (e: KnownHostEntry): string => `${e.file}:${e.line}`;

function newHostKey(cfg: HostKeyConfig, host: string, name: string, key: Buffer, warn: (msg: string) => void): EscpError | undefined {
  const what = `${keyLabel(key)} ${fingerprint(key)}`;
  const file = cfg.userFiles[0];
  if (cfg.strict === "yes") {
    const to = file ?? "a known_hosts file";
    return refuse(host, `unknown host key (${what}); add it to ${to} or pass -o StrictHostKeyChecking=accept-new`);
  }
  if (cfg.strict === "no") {
    warn(`ssh to ${host}: unknown host key (${what}) accepted unverified (StrictHostKeyChecking=no); not added to known_hosts`);
    return undefined;
  }
  if (file === undefined || file === NO_FILE) {
    warn(`ssh to ${host}: new host key (${what}) accepted; not recorded (no UserKnownHostsFile)`);
    return undefined;
  }
  try {
    appendKnownHost(file, knownHostLine(name, key, cfg.hashNew));
    warn(`ssh to ${host}: added ${name} (${what}) to ${file}`);
  } catch (e) {
    warn(`ssh to ${host}: new host key (${what}) accepted but not added to ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return undefined;
}

/** Read the known_hosts files for `host`:`port` now; verify the server's key when it arrives. */
export function hostKeyChecker(cfg: HostKeyConfig, host: string, port: number, warn: (msg: string) => void): HostKeyChecker {
  const name = knownHostName(host, port);
  const files = [...cfg.userFiles, ...cfg.globalFiles].filter((f) => f !== NO_FILE);
  const { entries, problems } = readKnownHosts(files);
  for (const p of problems) warn(`known_hosts: ${p}`);
  let accepted: Buffer | undefined; // a re-key must present the same key
  const decide = (key: Buffer): EscpError | undefined => {
    const what = `${keyLabel(key)} ${fingerprint(key)}`;
    if (accepted !== undefined) return accepted.equals(key) ? undefined : refuse(host, `host key changed during the session (${what}); refusing`);
    const v = checkHostKey(entries, name, key);
    switch (v.kind) {
      case "known":
        return undefined;
      case "revoked":
        return refuse(host, `REVOKED host key (${what}; ${where(v.entry)} marks it @revoked); refusing`);
      case "changed":
        return refuse(host, `REMOTE HOST KEY CHANGED (${what}; ${where(v.entry)} has another key): possible man-in-the-middle; refusing`);
      case "unknown":
        return newHostKey(cfg, host, name, key, warn);
    }
  };
  return {
    algorithms: hostKeyAlgorithms(knownKeyTypes(entries, name)),
    verify(key) {
      const err = decide(key);
      if (err === undefined) accepted ??= Buffer.from(key);
      return err;
    },
  };
}
