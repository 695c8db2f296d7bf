// Several "hosts" on one machine for pull, third-party (-3) and remote-to-remote tests: each
// host is a network namespace with its own OpenSSH sshd, all joined by a bridge that lives in
// a dedicated switch namespace. The root namespace (the test process, the local escp) has one
// veth link into that bridge, so it reaches every host, and the hosts reach each other.
//
//   root namespace                 switch namespace                host namespaces
//   emh<tag> 198.18.N.254/24 ── local ─┐
//                                      br0 ─── h1 ── eth0 198.18.N.1/24  (escp-mh-<pid>-<tag>-h1, sshd :22)
//                                       ├───── h2 ── eth0 198.18.N.2/24  (…-h2, sshd :22)
//                                       └───── h3 ── eth0 198.18.N.3/24  (…-h3, sshd :22)
//
// N is picked at random in the RFC 2544 benchmarking range 198.18.0.0/15 and must be unused
// in the root namespace. The file system is shared: a host's escp is this checkout
// (ESCP_REMOTE_CMD), and "remote" paths on different hosts are the same files.
// Teardown: stop(), and also at process exit/SIGINT/SIGTERM/SIGHUP; namespaces (and the
// processes still in them) left by a SIGKILLed run, whose names carry the dead pid, are
// reaped by the next startHosts() or by reapStaleHosts().
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { keygen, sshdConfigText } from "./sshd.ts";
import { makeTmpDir, onExitCleanup, removeTmpDir } from "./tmp-dir.ts";
import type { ExecOptions, ExecResult } from "./wan/netns.ts";

export type { ExecOptions, ExecResult } from "./wan/netns.ts";

export type HostId = "h1" | "h2" | "h3";
/** A block() endpoint: a host, or the root namespace ("local", where the test and the local escp run). */
export type Peer = HostId | "local";
/** "reject": an `unreachable` route, connects fail at once with EHOSTUNREACH ("No route to
 *  host"). "drop": a permanent neighbour entry with a MAC nobody owns, packets vanish and
 *  connects hang until the client's own timeout (a silent firewall). */
export type BlockHow = "reject" | "drop";

export interface MultiHostOptions {
  count: 2 | 3;
  /** sshd port inside every host namespace (default 22: each namespace has its own ports). */
  port?: number;
  /** authorized_keys options put before the user key (e.g. a forced command). */
  keyOptions?: string;
}

export interface Host {
  /** Also the `Host` alias in the ssh config. */
  id: HostId;
  /** Network namespace name, escp-mh-<pid>-<tag>-hN. */
  ns: string;
  /** Address on the fixture's bridge (198.18.N.k); sshd listens here only. */
  addr: string;
  port: number;
  /** The host's sshd (kill it to emulate a host whose sshd died). */
  sshdPid: number;
  /** "ssh-ed25519 AAAA..." of its host key. */
  hostKey: string;
  /** Its own sshd_config, host key and pid file. */
  dir: string;
  /** The tail of its sshd's stderr (for failure messages). */
  log(): string;
}

export interface MultiHost {
  hosts: Host[];
  host(id: HostId): Host;
  /** The switch namespace holding the bridge. */
  switchNs: string;
  /** "198.18.N.0/24". */
  subnet: string;
  /** The root namespace's address on the bridge: what hosts see as the client of local ssh. */
  localAddr: string;
  /** The root namespace's veth (emh<tag>). */
  rootLink: string;
  /** Login name on every host (this process's: root). */
  user: string;
  /** Private user key accepted by every host. */
  identity: string;
  /** known_hosts file: one line per host, "hN,ADDR ssh-ed25519 ..." ([..]:port unless 22). */
  knownHosts: string;
  knownHostsText: string;
  /** ssh config file with a `Host hN` alias per host: `ssh -F <sshConfig> h1`, `escp -F <sshConfig> h1:/x h2:/y`. */
  sshConfig: string;
  sshConfigText: string;
  /** Temp dir with keys, configs and one sub-directory per host; removed by stop(). */
  dir: string;
  /** `ssh -F <sshConfig> <id> [cmd...]` argv (run it from the root namespace, or inside a host). */
  ssh(id: HostId, cmd?: readonly string[]): string[];
  /** argv prefixed to run inside a host's namespace. */
  argv(id: HostId, cmd: readonly string[]): string[];
  /** Runs a command inside a host to completion (killed by stop() if still running). */
  exec(id: HostId, cmd: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a command inside a host (own process group, killed by stop()). */
  spawn(id: HostId, cmd: readonly string[], opts?: ExecOptions): Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Cuts traffic between two peers, both directions, existing connections included. */
  block(a: Peer, b: Peer, how?: BlockHow): Promise<void>;
  /** Undoes block(a, b). */
  unblock(a: Peer, b: Peer): Promise<void>;
  /** Kills every process in the hosts (sshd, sessions, spawned commands), deletes the root
   *  link, every namespace and the temp dir. Throws, after doing all it can, if a step failed. */
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";
const SFTP_SERVER = "/usr/lib/openssh/sftp-server";
const HOST_IDS: readonly HostId[] = ["h1", "h2", "h3"];
const NS_RE = /^escp-mh-(\d+)-([0-9a-f]{8})-(sw|h[1-3])$/;
const TMP_RE = /^escp-multihost-(\d+)-/;
const LOCAL_OCTET = 254;
const NOBODY_MAC = "02:00:00:00:00:00"; // locally administered, never assigned here
const START_DEADLINE_MS = 20_000;
const KILL_DEADLINE_MS = 10_000;
const SUBNET_ATTEMPTS = 16;

// ---- processes --------------------------------------------------------------------------

function exitCode(proc: Bun.Subprocess): number {
  const sig = proc.signalCode;
  return sig ? 128 + (typeof sig === "number" ? sig : (constants.signals[sig] ?? 0)) : (proc.exitCode ?? -1);
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function spawnGroup(argv: readonly string[], opts: ExecOptions, children?: Set<Bun.Subprocess>): Bun.Subprocess<"ignore", "pipe", "pipe"> {
  const proc = Bun.spawn([...argv], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
    env: { ...process.env, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  children?.add(proc);
  const unregister = onExitCleanup(() => killGroup(proc.pid));
  const timer = setTimeout(() => killGroup(proc.pid), opts.timeoutMs ?? 300_000);
  void proc.exited.then(() => {
    clearTimeout(timer);
    unregister();
    children?.delete(proc);
  });
  return proc;
}

async function collect(proc: Bun.Subprocess<"ignore", "pipe", "pipe">): Promise<ExecResult> {
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code: exitCode(proc), stdout, stderr };
}

async function ip(args: readonly string[]): Promise<void> {
  const r = await collect(spawnGroup(["ip", ...args], { timeoutMs: 30_000 }));
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
}

function ipSync(args: readonly string[]): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(["ip", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? 1, out: r.stdout.toString(), err: r.stderr.toString().trim() };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Inode of a named network namespace (what /proc/PID/ns/net links to), if it exists. */
export function netnsInode(name: string): number | undefined {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return undefined;
  }
}

/** Pids of the live processes whose network namespace is one of `inodes` (zombies have none). */
export function pidsInNetns(inodes: ReadonlySet<number>): number[] {
  const pids: number[] = [];
  if (inodes.size === 0) return pids;
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/ns/net`));
      if (m && inodes.has(Number(m[1]))) pids.push(Number(name));
    } catch {
      // gone, or a zombie (no namespaces any more)
    }
  }
  return pids.filter((p) => p !== process.pid);
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** SIGKILLs everything in the namespaces until none is left; returns what is still there
 *  at the deadline (normally nothing). */
async function killNetnsProcesses(inodes: ReadonlySet<number>): Promise<number[]> {
  const deadline = Date.now() + KILL_DEADLINE_MS;
  for (;;) {
    const left = pidsInNetns(inodes);
    if (left.length === 0 || Date.now() > deadline) return left;
    killAll(left);
    await Bun.sleep(5); // poll the condition "no process left"
  }
}

function killNetnsProcessesSync(inodes: ReadonlySet<number>): void {
  const deadline = Date.now() + KILL_DEADLINE_MS;
  for (;;) {
    const left = pidsInNetns(inodes);
    if (left.length === 0 || Date.now() > deadline) return;
    killAll(left);
    Bun.sleepSync(5); // poll the condition "no process left"
  }
}

// ---- addresses --------------------------------------------------------------------------

function toInt(a: string): number {
  const p = a.split(".").map(Number);
  return (((p[0] ?? 0) << 24) | ((p[1] ?? 0) << 16) | ((p[2] ?? 0) << 8) | (p[3] ?? 0)) >>> 0;
}

/** Whether prefixes "a.b.c.d[/len]" overlap (one contains the other). */
function overlaps(x: string, y: string): boolean {
  const [xa, xl] = x.split("/");
  const [ya, yl] = y.split("/");
  const len = Math.min(Number(xl ?? 32), Number(yl ?? 32));
  if (len === 0) return true;
  const mask = len >= 32 ? 0xffffffff : ~(0xffffffff >>> len) >>> 0;
  return (toInt(xa ?? "") & mask) >>> 0 === (toInt(ya ?? "") & mask) >>> 0;
}

const ROUTE_TYPES = new Set(["unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "anycast"]);

/** Every IPv4 prefix the root namespace has an address or a (non-default) route for. */
function rootPrefixes(): string[] {
  const prefixes: string[] = [];
  for (const line of ipSync(["-4", "-o", "addr", "show"]).out.split("\n")) {
    const m = /\binet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(line);
    if (m?.[1]) prefixes.push(m[1]);
  }
  for (const line of ipSync(["-4", "-o", "route", "show", "table", "all"]).out.split("\n")) {
    const words = line.trim().split(/\s+/);
    const dst = ROUTE_TYPES.has(words[0] ?? "") ? words[1] : words[0];
    if (dst && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst)) prefixes.push(dst);
  }
  return prefixes;
}

/** Devices of the root namespace holding an address inside `subnet`. */
function rootDevicesIn(subnet: string): string[] {
  const devs: string[] = [];
  for (const line of ipSync(["-4", "-o", "addr", "show", "to", subnet]).out.split("\n")) {
    const dev = line.trim().split(/\s+/)[1];
    if (dev) devs.push(dev.replace(/@.*$/, ""));
  }
  return devs;
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- reaping ----------------------------------------------------------------------------

/** Deletes what SIGKILLed runs left: namespaces escp-mh-<pid>-* whose pid is gone (after
 *  killing the processes still inside, e.g. their sshds), their root links, `unreachable`
 *  routes that block(…, "local") put in the root namespace for a subnet nobody holds any
 *  more, and their temp dirs. Returns the namespace names deleted. */
export function reapStaleHosts(): string[] {
  const stale: string[] = [];
  const tags = new Set<string>();
  for (const line of ipSync(["netns", "list"]).out.split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const m = NS_RE.exec(name);
    if (m?.[2] && !pidAlive(Number(m[1]))) {
      stale.push(name);
      tags.add(m[2]);
    }
  }
  const inodes = new Set(stale.map(netnsInode).filter((i): i is number => i !== undefined));
  killNetnsProcessesSync(inodes);
  for (const tag of tags) ipSync(["link", "del", `emh${tag}`]); // also vanishes with its peer's namespace
  const reaped = stale.filter((n) => ipSync(["netns", "delete", n]).code === 0);
  for (const line of ipSync(["-4", "-o", "route", "show", "type", "unreachable", "root", "198.18.0.0/15"]).out.split("\n")) {
    const dst = line.trim().split(/\s+/)[1] ?? "";
    const m = /^(198\.1[89]\.\d+)\.\d+(\/32)?$/.exec(dst);
    if (m && rootDevicesIn(`${m[1]}.0/24`).length === 0) ipSync(["route", "del", "unreachable", dst]);
  }
  if (process.env.ESCP_KEEP_TMP !== "1") {
    for (const name of readdirSync(tmpdir())) {
      const m = TMP_RE.exec(name);
      if (m && !pidAlive(Number(m[1]))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
  return reaped;
}

/** Whether this process can build the fixture: Linux, root-level namespace rights, ip, sshd, sftp-server. */
export function canMultiHost(): { ok: boolean; why: string } {
  if (process.platform !== "linux") return { ok: false, why: "the multi-host fixture needs Linux network namespaces" };
  if (!Bun.which("ip")) return { ok: false, why: "the multi-host fixture needs `ip` (iproute2) on PATH" };
  for (const f of [SSHD, SFTP_SERVER]) {
    if (!existsSync(f)) return { ok: false, why: `the multi-host fixture needs ${f}: run \`npm run setup\` (installs openssh-server)` };
  }
  const probe = `escp-mh-${process.pid}-${randomHex(4)}-sw`;
  const add = ipSync(["netns", "add", probe]);
  if (add.code !== 0) return { ok: false, why: `the multi-host fixture needs CAP_SYS_ADMIN/CAP_NET_ADMIN (root): \`ip netns add\` failed: ${add.err}` };
  const br = ipSync(["-n", probe, "link", "add", "br0", "type", "bridge"]);
  ipSync(["netns", "delete", probe]);
  if (br.code !== 0) return { ok: false, why: `the multi-host fixture needs bridge support: \`ip link add type bridge\` failed: ${br.err}` };
  return { ok: true, why: "" };
}

// ---- the fixture ------------------------------------------------------------------------

function currentUser(): string {
  const r = Bun.spawnSync(["id", "-un"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const name = r.stdout.toString().trim();
  if (r.exitCode !== 0 || name === "") throw new Error(`id -un failed: ${r.stderr.toString().trim()}`);
  return name;
}

/** Reads sshd's stderr until `ready` shows, it exits, or the deadline passes; keeps draining
 *  afterwards into `log` (last 64 KiB) so sshd never blocks on a full pipe. */
async function waitForLine(proc: Bun.Subprocess<"ignore", "ignore", "pipe">, ready: string, log: { text: string }): Promise<string | undefined> {
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<string>((res) => {
    timer = setTimeout(() => res(`no "${ready}" within ${START_DEADLINE_MS} ms`), START_DEADLINE_MS);
  });
  const scan = (async (): Promise<string | undefined> => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      log.text += decoder.decode(value, { stream: true });
      if (log.text.includes(ready)) return undefined;
    }
    await proc.exited;
    return `sshd exited with status ${exitCode(proc)}`;
  })();
  const failure = await Promise.race([scan, deadline]);
  clearTimeout(timer);
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done || value === undefined) return;
      log.text = (log.text + decoder.decode(value, { stream: true })).slice(-65536);
    }
  })();
  return failure;
}

/** Resolves once a TCP connect from the root namespace to addr:port succeeds (deadline-bound). */
async function waitConnectable(addr: string, port: number): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  let last = "";
  for (;;) {
    try {
      const sock = await Bun.connect({ hostname: addr, port, socket: { data() {}, error() {} } });
      sock.end();
      return;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${addr}:${port} not reachable from the root namespace within ${START_DEADLINE_MS} ms: ${last}`);
    await Bun.sleep(10); // poll the condition "connect succeeds"
  }
}

/** Builds the hosts; resolves once every sshd listens and is reachable from the root
 *  namespace. Throws (after cleaning up everything it made) on failure. */
export async function startHosts(o: MultiHostOptions): Promise<MultiHost> {
  if (o.count !== 2 && o.count !== 3) throw new Error(`startHosts: count must be 2 or 3, not ${String(o.count)}`);
  const port = o.port ?? 22;
  reapStaleHosts();
  const tag = randomHex(4);
  const prefix = `escp-mh-${process.pid}-${tag}`;
  const switchNs = `${prefix}-sw`;
  const rootLink = `emh${tag}`; // 11 chars < IFNAMSIZ
  const ids = HOST_IDS.slice(0, o.count);
  const nsOf = (id: HostId): string => `${prefix}-${id}`;
  const user = currentUser();
  const dir = makeTmpDir(`multihost-${process.pid}`);

  const children = new Set<Bun.Subprocess>();
  const sshds = new Map<HostId, Bun.Subprocess>();
  const namespaces: string[] = []; // created, in order
  const inodes = new Set<number>();
  const rootRoutes = new Set<string>(); // "unreachable ADDR/32" added by block(…, "local")
  let rootLinkMade = false;

  const noteNs = (name: string): void => {
    namespaces.push(name);
    const ino = netnsInode(name);
    if (ino !== undefined) inodes.add(ino);
  };
  const teardownSync = (): void => {
    for (const c of children) killGroup(c.pid);
    for (const s of sshds.values()) {
      try {
        s.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    killNetnsProcessesSync(inodes);
    for (const r of rootRoutes) ipSync(["route", "del", "unreachable", r]);
    if (rootLinkMade) ipSync(["link", "del", rootLink]);
    for (const n of namespaces.toReversed()) ipSync(["netns", "delete", n]);
    namespaces.length = 0;
  }; // the temp dir has its own exit registration (makeTmpDir), run after this one
  const unregister = onExitCleanup(teardownSync);
  const inNs = async (ns: string, cmd: readonly string[]): Promise<ExecResult> =>
    await collect(spawnGroup(["ip", "netns", "exec", ns, ...cmd], { timeoutMs: 30_000 }));
  const noIpv6 = ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];

  let net = "";
  const hostKeys = new Map<HostId, string>();
  const logs = new Map<HostId, { text: string }>();
  try {
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege-separation dir
    const identity = join(dir, "id_ed25519");
    const keys = Promise.all([
      keygen(identity),
      ...ids.map(async (id) => {
        mkdirSync(join(dir, id));
        await keygen(join(dir, id, "host_ed25519"));
      }),
    ]);
    keys.catch(() => {}); // awaited below; do not let an early network failure orphan it

    // The switch: a bridge, and the root namespace's link into it.
    await ip(["netns", "add", switchNs]);
    noteNs(switchNs);
    await inNs(switchNs, noIpv6); // best effort: no IPv6 autoconfiguration chatter on the bridge
    await ip(["-n", switchNs, "link", "add", "br0", "type", "bridge"]);
    await ip(["link", "add", rootLink, "type", "veth", "peer", "name", "local", "netns", switchNs]);
    rootLinkMade = true;
    try {
      writeFileSync(`/proc/sys/net/ipv6/conf/${rootLink}/disable_ipv6`, "1");
    } catch {
      // no IPv6 in this kernel: nothing to silence
    }

    // Claim a /24 nobody in the root namespace uses; two fixtures racing for the same one
    // both see the other's address and both pick again.
    for (let attempt = 0; attempt < SUBNET_ATTEMPTS && net === ""; attempt++) {
      const n = (crypto.getRandomValues(new Uint16Array(1))[0] ?? 0) % 512;
      const cand = `198.${18 + (n >> 8)}.${n & 255}`;
      if (rootPrefixes().some((p) => overlaps(p, `${cand}.0/24`))) continue;
      await ip(["addr", "add", `${cand}.${LOCAL_OCTET}/24`, "dev", rootLink]);
      if (rootDevicesIn(`${cand}.0/24`).every((d) => d === rootLink)) net = cand;
      else await ip(["addr", "del", `${cand}.${LOCAL_OCTET}/24`, "dev", rootLink]);
    }
    if (net === "") throw new Error(`no free /24 in 198.18.0.0/15 after ${SUBNET_ATTEMPTS} attempts`);

    await Promise.all(
      ids.map(async (id, i) => {
        const ns = nsOf(id);
        await ip(["netns", "add", ns]);
        noteNs(ns);
        await inNs(ns, noIpv6); // before eth0 exists, so "default" applies to it
        await ip(["-n", switchNs, "link", "add", id, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        await ip(["-n", switchNs, "link", "set", id, "master", "br0", "up"]);
        await ip(["-n", ns, "link", "set", "lo", "up"]);
        await ip(["-n", ns, "addr", "add", `${net}.${i + 1}/24`, "dev", "eth0"]);
        await ip(["-n", ns, "link", "set", "eth0", "up"]);
      }),
    );
    await ip(["-n", switchNs, "link", "set", "local", "master", "br0", "up"]);
    await ip(["-n", switchNs, "link", "set", "br0", "up"]);
    await ip(["link", "set", rootLink, "up"]);

    await keys;
    const pub = (await Bun.file(`${identity}.pub`).text()).trim();
    const authorizedKeys = join(dir, "authorized_keys");
    writeFileSync(authorizedKeys, `${o.keyOptions ? `${o.keyOptions} ` : ""}${pub}\n`);
    await Promise.all(
      ids.map(async (id, i) => {
        const hostDir = join(dir, id);
        const addr = `${net}.${i + 1}`;
        hostKeys.set(id, (await Bun.file(join(hostDir, "host_ed25519.pub")).text()).trim().split(/\s+/).slice(0, 2).join(" "));
        const cfg = join(hostDir, "sshd_config");
        writeFileSync(cfg, sshdConfigText({ dir: hostDir, listen: addr, port, hostKey: join(hostDir, "host_ed25519"), authorizedKeys, sftp: SFTP_SERVER }));
        // `ip netns exec` execs sshd in place: the pid is sshd's.
        const proc = Bun.spawn(["ip", "netns", "exec", nsOf(id), SSHD, "-D", "-e", "-f", cfg], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
        sshds.set(id, proc);
        const log = { text: "" };
        logs.set(id, log);
        const failure = await waitForLine(proc, `Server listening on ${addr} port ${port}`, log);
        if (failure) throw new Error(`sshd of ${id} (${nsOf(id)}) failed to start: ${failure}; stderr:\n${log.text.trim()}`);
        await waitConnectable(addr, port);
      }),
    );
  } catch (e) {
    teardownSync();
    unregister();
    removeTmpDir(dir);
    throw e;
  }

  const identity = join(dir, "id_ed25519");
  const hostPattern = (name: string): string => (port === 22 ? name : `[${name}]:${port}`);
  const hosts: Host[] = ids.map((id, i) => {
    const log = logs.get(id) ?? { text: "" };
    return {
      id,
      ns: nsOf(id),
      addr: `${net}.${i + 1}`,
      port,
      sshdPid: sshds.get(id)?.pid ?? 0,
      hostKey: hostKeys.get(id) ?? "",
      dir: join(dir, id),
      log: () => log.text,
    };
  });
  const knownHosts = join(dir, "known_hosts");
  const knownHostsText = hosts.map((h) => `${hostPattern(h.id)},${hostPattern(h.addr)} ${h.hostKey}\n`).join("");
  writeFileSync(knownHosts, knownHostsText);
  const sshConfig = join(dir, "ssh_config");
  const sshConfigText = [
    `# escp multi-host fixture ${prefix} (harness/multihost.ts); removed by stop()`,
    ...hosts.flatMap((h) => [`Host ${h.id}`, `  HostName ${h.addr}`, `  Port ${port}`, ""]),
    "Host *",
    `  User ${user}`,
    `  IdentityFile ${identity}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${knownHosts}`,
    "  GlobalKnownHostsFile /dev/null",
    "  StrictHostKeyChecking yes",
    "  CheckHostIP no",
    "  BatchMode yes",
    "  LogLevel ERROR",
    "  ConnectTimeout 20",
    "",
  ].join("\n");
  writeFileSync(sshConfig, sshConfigText);

  const byId = new Map(hosts.map((h) => [h.id, h]));
  const host = (id: HostId): Host => {
    const h = byId.get(id);
    if (!h) throw new Error(`no host ${id} in this fixture (${ids.join(", ")})`);
    return h;
  };
  const blocks = new Map<string, BlockHow>();
  const pairKey = (a: Peer, b: Peer): string => [a, b].sort().join("|");
  const addrOf = (p: Peer): string => (p === "local" ? `${net}.${LOCAL_OCTET}` : host(p).addr);
  /** One direction of a block: what `from` does with packets to `to`. */
  const oneWay = async (from: Peer, to: Peer, how: BlockHow, on: boolean): Promise<void> => {
    const dst = addrOf(to);
    const nsArgs = from === "local" ? [] : ["-n", host(from).ns];
    const dev = from === "local" ? rootLink : "eth0";
    if (how === "drop") {
      await ip([...nsArgs, "neigh", on ? "replace" : "del", dst, ...(on ? ["lladdr", NOBODY_MAC, "nud", "permanent"] : []), "dev", dev]);
    } else {
      await ip([...nsArgs, "route", on ? "replace" : "del", "unreachable", `${dst}/32`]);
      if (from === "local") {
        if (on) rootRoutes.add(`${dst}/32`);
        else rootRoutes.delete(`${dst}/32`);
      }
    }
  };

  let stopped: Promise<void> | undefined;
  const fx: MultiHost = {
    hosts,
    host,
    switchNs,
    subnet: `${net}.0/24`,
    localAddr: `${net}.${LOCAL_OCTET}`,
    rootLink,
    user,
    identity,
    knownHosts,
    knownHostsText,
    sshConfig,
    sshConfigText,
    dir,
    ssh: (id, cmd = []) => ["ssh", "-F", sshConfig, host(id).id, ...cmd],
    argv: (id, cmd) => ["ip", "netns", "exec", host(id).ns, ...cmd],
    exec: (id, cmd, opts = {}) => collect(spawnGroup(fx.argv(id, cmd), opts, children)),
    spawn: (id, cmd, opts = {}) => spawnGroup(fx.argv(id, cmd), opts, children),
    async block(a, b, how = "reject") {
      if (a === b) throw new Error(`block(${a}, ${b}): two different peers`);
      const key = pairKey(a, b);
      if (blocks.has(key)) throw new Error(`block(${a}, ${b}): already blocked`);
      addrOf(a);
      addrOf(b);
      blocks.set(key, how);
      await oneWay(a, b, how, true);
      await oneWay(b, a, how, true);
    },
    async unblock(a, b) {
      const key = pairKey(a, b);
      const how = blocks.get(key);
      if (!how) throw new Error(`unblock(${a}, ${b}): not blocked`);
      await oneWay(a, b, how, false);
      await oneWay(b, a, how, false);
      blocks.delete(key);
    },
    stop() {
      stopped ??= (async () => {
        const failed: string[] = [];
        for (const c of children) killGroup(c.pid);
        // sshd -D exits on SIGTERM; whatever it leaves (sessions, their children) goes below.
        await Promise.all(
          [...sshds.values()].map(async (s) => {
            s.kill("SIGTERM");
            const timer = setTimeout(() => s.kill("SIGKILL"), KILL_DEADLINE_MS);
            await s.exited;
            clearTimeout(timer);
          }),
        );
        const left = await killNetnsProcesses(inodes);
        if (left.length) failed.push(`processes still in the namespaces: ${left.join(" ")}`);
        for (const r of rootRoutes) {
          const res = ipSync(["route", "del", "unreachable", r]);
          if (res.code !== 0) failed.push(`ip route del unreachable ${r}: ${res.err}`);
        }
        rootRoutes.clear();
        const del = ipSync(["link", "del", rootLink]);
        if (del.code !== 0) failed.push(`ip link del ${rootLink}: ${del.err}`);
        for (const n of namespaces.toReversed()) {
          const res = ipSync(["netns", "delete", n]);
          if (res.code !== 0) failed.push(`ip netns delete ${n}: ${res.err}`);
        }
        namespaces.length = 0;
        unregister();
        removeTmpDir(dir);
        if (failed.length) throw new Error(`multi-host fixture stop: ${failed.join("; ")}`);
      })();
      return stopped;
    },
  };
  return fx;
}
