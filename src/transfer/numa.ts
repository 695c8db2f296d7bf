// NUMA placement (--numa off|auto|NODE): which node's CPUs the stream threads run on, read
// from sysfs (a root parameter, so tests use a fake tree): the node of the NIC that carries the
// data connection, else of the block device holding the data, else none; no-op on one node.
// EScp differs: no cpumask/nodemask to write by hand, and a wrong node is a usage error at
// start (exit 2), never a process killed later by an inverted set_mempolicy check.
import { createSocket } from "node:dgram";
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { dirname, join } from "node:path";
import { EscpError } from "../errors/escp-error.ts";
import { log } from "../log/logger.ts";

/** Node number → its CPUs, ascending. */
export type Topology = Map<number, number[]>;

/** Where the data flows on this side: the connection's local address and the data's path. */
export interface DataEnds {
  /** Local IP address of the data connection; undefined = not known (no NIC preference). */
  localAddress?: string;
  /** A file or directory the data is read from (sender) or written to (receiver). */
  storagePath?: string;
}

export interface Placement {
  node: number;
  cpus: number[];
  /** Why this node, for the debug line. */
  why: string;
}

export interface SysfsOptions {
  /** "/sys" unless a test points it at a fake tree. */
  sysfsRoot?: string;
  /** os.networkInterfaces() unless a test supplies its own. */
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** CPUs of a sysfs cpulist ("0-3,8-11", "0", "" = none); whitespace and newlines are ignored. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.replace(/\s+/g, "").split(",")) {
    if (part === "") continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) continue; // not a cpulist piece: ignore rather than guess
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi && c < 1 << 16; c++) cpus.push(c);
  }
  return [...new Set(cpus)].sort((a, b) => a - b);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The machine's nodes with their CPUs (nodes without CPUs, e.g. memory-only, are left out).
 * Empty when there is no node directory (a kernel without NUMA). */
export function readTopology(sysfsRoot = "/sys"): Topology {
  const nodes: Topology = new Map();
  const dir = join(sysfsRoot, "devices/system/node");
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return nodes;
  }
  for (const name of names) {
    const m = /^node(\d+)$/.exec(name);
    if (!m) continue;
    const cpus = parseCpuList(readText(join(dir, name, "cpulist")) ?? "");
    if (cpus.length > 0) nodes.set(Number(m[1]), cpus);
  }
  return new Map([...nodes].sort((a, b) => a[0] - b[0]));
}

/** The numa_node of the device behind a sysfs directory: its `device`, or the nearest parent
 * of it that has one (a virtio NIC's is on the PCI function above it; an NVMe namespace's on
 * its controller's PCI device). undefined: none found, or -1 (the firmware does not say). */
export function deviceNode(dir: string, sysfsRoot = "/sys"): number | undefined {
  let p: string;
  try {
    p = realpathSync(join(dir, "device"));
  } catch {
    return undefined; // a virtual device (lo, dm-*, md*): no preference
  }
  const top = realpathSync(sysfsRoot);
  for (let i = 0; i < 4 && p.startsWith(top) && p !== top; i++, p = dirname(p)) {
    const text = readText(join(p, "numa_node"));
    if (text === undefined) continue;
    const n = Number(text.trim());
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  }
  return undefined;
}

/** The interface that owns a local address ("::ffff:10.0.0.1" counts as 10.0.0.1). */
export function interfaceOf(address: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string | undefined {
  const want = address
    .replace(/^::ffff:(?=\d+\.)/i, "")
    .replace(/%.*$/, "")
    .toLowerCase();
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (addrs?.some((a) => a.address.replace(/%.*$/, "").toLowerCase() === want)) return name;
  }
  return undefined;
}

/** The NIC's node for the data connection's local address (loopback has no device). */
export function nicNode(address: string, opts: SysfsOptions = {}): number | undefined {
  const root = opts.sysfsRoot ?? "/sys";
  const name = interfaceOf(address, opts.interfaces ?? networkInterfaces());
  if (name === undefined || name.includes("/")) return undefined;
  return deviceNode(join(root, "class/net", name), root);
}

/** major:minor of a Linux dev_t (glibc's gnu_dev_major/minor). */
export function devNumbers(dev: bigint): [number, number] {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

/** The node of the block device holding path (or its nearest existing ancestor: a destination
 * may not exist yet). A partition's is its disk's. tmpfs, overlay, device-mapper: none. */
export function storageNode(path: string, opts: SysfsOptions = {}): number | undefined {
  const root = opts.sysfsRoot ?? "/sys";
  let p = path;
  let dev: bigint | undefined;
  for (let i = 0; i < 64 && dev === undefined; i++) {
    try {
      dev = statSync(p, { bigint: true }).dev;
    } catch {
      const up = dirname(p);
      if (up === p) return undefined;
      p = up;
    }
  }
  if (dev === undefined) return undefined;
  const [major, minor] = devNumbers(dev);
  let disk: string;
  try {
    disk = realpathSync(join(root, "dev/block", `${major}:${minor}`));
  } catch {
    return undefined; // no block device behind it (major 0: tmpfs, overlay, nfs ...)
  }
  if (existsSync(join(disk, "partition"))) disk = dirname(disk);
  return deviceNode(disk, root);
}

/** Check a --numa value against this machine: a NODE that does not exist is E_USAGE. */
export function checkNumaSetting(setting: string, sysfsRoot = "/sys"): void {
  if (setting === "off" || setting === "auto") return;
  const node = Number(setting);
  const topo = readTopology(sysfsRoot);
  if (topo.has(node) || (topo.size === 0 && node === 0)) return; // no node directory: one node, 0
  const have = topo.size === 0 ? "0" : [...topo.keys()].join(", ");
  throw new EscpError("E_USAGE", `--numa ${setting}: no NUMA node ${node} with CPUs on this machine (nodes: ${have})`);
}

/** The placement --numa asks for, or undefined (off, one node, nothing known). localAddress
 * is asked for only when it can matter (auto on more than one node). */
export async function choosePlacement(setting: string, ends: DataEnds | (() => Promise<DataEnds>), opts: SysfsOptions = {}): Promise<Placement | undefined> {
  const root = opts.sysfsRoot ?? "/sys";
  checkNumaSetting(setting, root);
  if (setting === "off") return undefined;
  const topo = readTopology(root);
  if (topo.size <= 1) return undefined;
  const pick = (node: number, why: string): Placement | undefined => {
    const cpus = topo.get(node);
    return cpus ? { node, cpus, why } : undefined;
  };
  if (setting !== "auto") return pick(Number(setting), "--numa");
  const where = typeof ends === "function" ? await ends() : ends;
  const nic = where.localAddress === undefined ? undefined : nicNode(where.localAddress, opts);
  if (nic !== undefined && topo.has(nic)) return pick(nic, `the NIC of ${where.localAddress}`);
  const disk = where.storagePath === undefined ? undefined : storageNode(where.storagePath, opts);
  if (disk !== undefined && topo.has(disk)) return pick(disk, `the storage of ${where.storagePath}`);
  return undefined;
}

/** The mask escp_affinity_set takes: bit i of byte i/8 = CPU i. */
export function cpuMask(cpus: readonly number[]): Uint8Array {
  const mask = new Uint8Array(cpus.length === 0 ? 0 : Math.floor(Math.max(...cpus) / 8) + 1);
  for (const c of cpus) mask[c >> 3]! |= 1 << (c & 7);
  return mask;
}

/** The local address the kernel would use to reach remote (a connected UDP socket sends
 * nothing); undefined when there is no route. */
export async function localAddressTo(remote: string): Promise<string | undefined> {
  if (remote === "") return undefined;
  const sock = createSocket(remote.includes(":") ? "udp6" : "udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.connect(9, remote, () => resolve());
    });
    return sock.address().address;
  } catch {
    return undefined;
  } finally {
    sock.close();
  }
}

/** What the caller pins: a native session's escp_affinity_set. */
export interface Pinnable {
  /** False: none of the CPUs may be used by this process. */
  setAffinity(mask: Uint8Array): boolean;
}

/** Decide (--numa) and pin this side's stream threads; logs the decision once (debug). */
export async function placeStreams(
  target: Pinnable,
  setting: string,
  ends: DataEnds | (() => Promise<DataEnds>),
  opts: SysfsOptions = {},
): Promise<Placement | undefined> {
  const p = await choosePlacement(setting, ends, opts);
  if (p === undefined) {
    log.debug(`numa: ${setting === "off" ? "off" : "no placement (one node, or neither the NIC's nor the storage's node is known)"}`);
    return undefined;
  }
  if (!target.setAffinity(cpuMask(p.cpus))) {
    const why = `none of node ${p.node}'s CPUs may be used by this process (taskset or cgroup)`;
    if (setting !== "auto") throw new EscpError("E_USAGE", `--numa ${setting}: ${why}`);
    log.debug(`numa: no placement: ${why}`);
    return undefined;
  }
  log.debug(`numa: stream threads on node ${p.node} (${p.why}), CPUs ${p.cpus.join(",")}`);
  return p;
}
