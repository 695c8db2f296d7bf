// numa.ts against fake sysfs trees in a temporary directory: nodes, NICs and block devices.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import type { NetworkInterfaceInfo } from "node:os";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { EscpError } from "../errors/escp-error.ts";
import { checkNumaSetting, choosePlacement, cpuMask, devNumbers, interfaceOf, nicNode, parseCpuList, placeStreams, readTopology, storageNode } from "./numa.ts";

const base = mkdtempSync(join(tmpdir(), "escp-numa-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let trees = 0;

function put(root: string, rel: string, text: string): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
}

function link(root: string, rel: string, target: string): void {
  const at = join(root, rel);
  mkdirSync(dirname(at), { recursive: true });
  mkdirSync(join(root, target), { recursive: true });
  symlinkSync(relative(dirname(at), join(root, target)), at);
}

/** A fake /sys: nodes (node → cpulist), NICs (name → numa_node of its PCI function, or
 * "virtio" nesting), and the block device of `base` (whole disk or partition). */
function tree(spec: {
  nodes?: Record<number, string>;
  nics?: Record<string, { node: string; virtio?: boolean }>;
  disk?: { node: string; partition: boolean };
}): string {
  const root = join(base, `sys${trees++}`);
  mkdirSync(root);
  for (const [n, list] of Object.entries(spec.nodes ?? {})) put(root, `devices/system/node/node${n}/cpulist`, list);
  if (spec.nodes) put(root, "devices/system/node/online", "");
  for (const [name, nic] of Object.entries(spec.nics ?? {})) {
    const pci = `devices/pci0000:${name}/0000:${name}:01.0`;
    put(root, `${pci}/numa_node`, `${nic.node}\n`);
    const dev = nic.virtio ? `${pci}/virtio3` : pci;
    link(root, `class/net/${name}`, `${dev}/net/${name}`);
    link(root, `${dev}/net/${name}/device`, dev);
  }
  link(root, "class/net/lo", "devices/virtual/net/lo"); // no device: no preference
  if (spec.disk) {
    const [major, minor] = devNumbers(statSync(base, { bigint: true }).dev);
    const pci = "devices/pci0000:00/0000:00:1f.2";
    put(root, `${pci}/numa_node`, `${spec.disk.node}\n`);
    const diskDir = `${pci}/ata1/host0/block/sda`;
    link(root, `${diskDir}/device`, pci);
    const target = spec.disk.partition ? `${diskDir}/sda1` : diskDir;
    if (spec.disk.partition) put(root, `${target}/partition`, "1\n");
    link(root, `dev/block/${major}:${minor}`, target);
  }
  return root;
}

function iface(address: string): NetworkInterfaceInfo {
  return { address, netmask: "255.255.255.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: false, cidr: null } as NetworkInterfaceInfo;
}
const interfaces = { lo: [iface("127.0.0.1")], eth0: [iface("10.0.0.5")], eth1: [iface("10.1.0.5"), iface("fe80::1%eth1")] };

describe("parseCpuList", () => {
  test("sysfs cpulists", () => {
    expect(parseCpuList("0")).toEqual([0]);
    expect(parseCpuList("0-3,8-11")).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    expect(parseCpuList("")).toEqual([]);
    expect(parseCpuList("\n")).toEqual([]);
    expect(parseCpuList(" 4-5 ,\t7\n")).toEqual([4, 5, 7]);
    expect(parseCpuList("3,1-2,2")).toEqual([1, 2, 3]);
    expect(parseCpuList("x,2")).toEqual([2]); // a piece that is not a cpulist is skipped
  });

  test("cpuMask: bit i of byte i/8", () => {
    expect([...cpuMask([0])]).toEqual([1]);
    expect([...cpuMask([1, 9])]).toEqual([2, 2]);
    expect([...cpuMask([8, 9, 10, 11])]).toEqual([0, 0x0f]);
    expect(cpuMask([]).length).toBe(0);
  });
});

describe("topology", () => {
  test("nodes with CPUs; none without a node directory", () => {
    const t = readTopology(tree({ nodes: { 0: "0-3\n", 1: "4-7\n", 2: "\n" } }));
    expect([...t.keys()]).toEqual([0, 1]); // node 2: memory only
    expect(t.get(1)).toEqual([4, 5, 6, 7]);
    expect(readTopology(join(base, "nowhere")).size).toBe(0);
  });

  test("the NIC of a local address; loopback and unknown (-1) give none", () => {
    const root = tree({ nics: { eth0: { node: "-1" }, eth1: { node: "1", virtio: true } } });
    expect(interfaceOf("::ffff:10.1.0.5", interfaces)).toBe("eth1");
    expect(interfaceOf("fe80::1", interfaces)).toBe("eth1");
    expect(nicNode("10.1.0.5", { sysfsRoot: root, interfaces })).toBe(1); // virtio: its PCI function's node
    expect(nicNode("10.0.0.5", { sysfsRoot: root, interfaces })).toBeUndefined();
    expect(nicNode("127.0.0.1", { sysfsRoot: root, interfaces })).toBeUndefined();
    expect(nicNode("192.0.2.99", { sysfsRoot: root, interfaces })).toBeUndefined();
  });

  test("the storage of a path: a partition's is its disk's; a missing path's nearest ancestor's", () => {
    expect(storageNode(base, { sysfsRoot: tree({ disk: { node: "1", partition: true } }) })).toBe(1);
    const whole = tree({ disk: { node: "0", partition: false } });
    expect(storageNode(join(base, "not/yet/made"), { sysfsRoot: whole })).toBe(0);
    expect(storageNode(base, { sysfsRoot: tree({ disk: { node: "-1", partition: false } }) })).toBeUndefined();
    expect(storageNode(base, { sysfsRoot: tree({}) })).toBeUndefined(); // no block device behind it
  });

  test("devNumbers splits a dev_t as glibc does", () => {
    expect(devNumbers(0x801n)).toEqual([8, 1]);
    expect(devNumbers((259n << 8n) | 5n)).toEqual([259, 5]);
    expect(devNumbers(0x10300100n)).toEqual([1, 0x10300]); // a minor past 255
  });
});

describe("choosePlacement", () => {
  const two = { 0: "0-3", 1: "4-7" };
  const at = (root: string) => ({ sysfsRoot: root, interfaces });

  test("one node (or no node directory): nothing, whatever is asked", async () => {
    const one = tree({ nodes: { 0: "0-1" }, nics: { eth1: { node: "0" } } });
    expect(await choosePlacement("auto", { localAddress: "10.1.0.5", storagePath: base }, at(one))).toBeUndefined();
    expect(await choosePlacement("0", {}, at(one))).toBeUndefined();
    expect(await choosePlacement("0", {}, at(join(base, "nowhere")))).toBeUndefined();
  });

  test("two nodes, the NIC on node 1: node 1's CPUs", async () => {
    const root = tree({ nodes: two, nics: { eth1: { node: "1" } }, disk: { node: "0", partition: false } });
    const p = await choosePlacement("auto", { localAddress: "10.1.0.5", storagePath: base }, at(root));
    expect(p).toMatchObject({ node: 1, cpus: [4, 5, 6, 7] });
    expect(p?.why).toContain("NIC");
  });

  test("NIC unknown (-1), storage on node 0: node 0", async () => {
    const root = tree({ nodes: two, nics: { eth0: { node: "-1" } }, disk: { node: "0", partition: true } });
    const p = await choosePlacement("auto", async () => ({ localAddress: "10.0.0.5", storagePath: base }), at(root));
    expect(p).toMatchObject({ node: 0, cpus: [0, 1, 2, 3] });
    expect(p?.why).toContain("storage");
    expect(await choosePlacement("auto", { localAddress: "127.0.0.1" }, at(root))).toBeUndefined(); // nothing known
  });

  test("--numa 1 on two nodes: node 1; off: nothing", async () => {
    const root = tree({ nodes: two, nics: { eth1: { node: "0" } } });
    expect(await choosePlacement("1", { localAddress: "10.1.0.5" }, at(root))).toMatchObject({ node: 1, cpus: [4, 5, 6, 7] });
    let asked = false;
    expect(await choosePlacement("off", async () => ((asked = true), { localAddress: "10.1.0.5" }), at(root))).toBeUndefined();
    expect(asked).toBe(false); // off looks nothing up
  });

  test("--numa 5: E_USAGE naming --numa, one line", async () => {
    const root = tree({ nodes: two });
    let err: unknown;
    try {
      await choosePlacement("5", {}, at(root));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EscpError);
    expect((err as EscpError).code).toBe("E_USAGE");
    expect((err as EscpError).message).toBe("--numa 5: no NUMA node 5 with CPUs on this machine (nodes: 0, 1)");
    expect(() => checkNumaSetting("1", tree({ nodes: { 0: "0-1" } }))).toThrow("--numa 1: no NUMA node 1 with CPUs on this machine (nodes: 0)");
    expect(() => checkNumaSetting("0", join(base, "nowhere"))).not.toThrow();
  });
});

describe("placeStreams", () => {
  const root = tree({ nodes: { 0: "0-3", 1: "4-7,12" }, nics: { eth1: { node: "1" } } });

  test("pins the chosen node's CPUs as a mask", async () => {
    const masks: number[][] = [];
    const p = await placeStreams({ setAffinity: (m) => (masks.push([...m]), true) }, "auto", { localAddress: "10.1.0.5" }, { sysfsRoot: root, interfaces });
    expect(p?.node).toBe(1);
    expect(masks).toEqual([[0xf0, 0x10]]);
  });

  test("a mask this process may not use: auto goes without, a node asked for is E_USAGE", async () => {
    const refuse = { setAffinity: () => false };
    expect(await placeStreams(refuse, "auto", { localAddress: "10.1.0.5" }, { sysfsRoot: root, interfaces })).toBeUndefined();
    await expect(placeStreams(refuse, "1", {}, { sysfsRoot: root, interfaces })).rejects.toThrow("--numa 1: none of node 1's CPUs may be used by this process");
  });
});
