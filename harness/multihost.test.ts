// The multi-host fixture itself (harness/multihost.ts): hosts come up as separate namespaces
// with their own sshd, are reached by alias through the generated ssh config from here and
// from each other, `scp -3` works across them, block() cuts exactly one pair, stop() leaves
// nothing, two fixtures do not collide, and a SIGKILLed run's leftovers are reaped.
// The start time is logged, never asserted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { canMultiHost, type HostId, type MultiHost, netnsInode, pidsInNetns, startHosts } from "./multihost.ts";
import { makeTmpDir, removeTmpDir } from "./tmp-dir.ts";

const can = canMultiHost();
if (!can.ok) console.warn(`[multihost] skipping the multi-host fixture tests: ${can.why}`);

const T = 60_000;
let fx: MultiHost | undefined;
let tmp = "";

function need(): MultiHost {
  if (!fx) throw new Error("fixture not started");
  return fx;
}

async function run(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** `ssh -F cfg <to> 'echo $SSH_CONNECTION'` from the root namespace or from inside a host:
 *  resolves [client address, server address, server port] as the server saw them. */
async function whoAmI(f: MultiHost, to: HostId, from?: HostId): Promise<string[]> {
  const argv = f.ssh(to, ["echo $SSH_CONNECTION"]);
  const r = from ? await f.exec(from, argv, { timeoutMs: 30_000 }) : await run(argv);
  if (r.code !== 0) throw new Error(`ssh ${from ?? "local"} -> ${to} failed (${r.code}): ${r.stderr.trim()}`);
  const [client, , server, port] = r.stdout.trim().split(" ");
  return [client ?? "", server ?? "", port ?? ""];
}

/** Exit status and stderr of `ssh -F cfg <to> true` from the root namespace or a host. */
async function sshTrue(f: MultiHost, to: HostId, from?: HostId, extra: string[] = []): Promise<{ code: number; stderr: string }> {
  const argv = ["ssh", "-F", f.sshConfig, ...extra, to, "true"];
  const r = from ? await f.exec(from, argv, { timeoutMs: 30_000 }) : await run(argv);
  return { code: r.code, stderr: r.stderr.trim() };
}

function netnsList(): string[] {
  const r = Bun.spawnSync(["ip", "netns", "list"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  return r.stdout
    .toString()
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

/** Whether pid is a live (non-zombie) process. PID 1 here reaps orphans lazily. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Live processes still in these (deleted) namespaces. A namespace's inode number is reused
 *  once it is freed, so inodes now owned by a listed namespace (someone else's) are left out:
 *  a namespace that still holds a process is not freed and cannot have been reused. */
function strayPids(inodes: ReadonlySet<number>): number[] {
  const reused = new Set(netnsList().map(netnsInode));
  return pidsInNetns(new Set([...inodes].filter((i) => !reused.has(i))));
}

/** First word of a process's command line ("" once it is gone). */
function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
  } catch {
    return "";
  }
}

function linkExists(name: string): boolean {
  return Bun.spawnSync(["ip", "link", "show", "dev", name], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

/** Root-namespace routes of any table inside the fixture's subnet. */
function rootRoutesIn(subnet: string): string {
  return Bun.spawnSync(["ip", "-4", "-o", "route", "show", "table", "all", "root", subnet], { stdin: "ignore", stdout: "pipe", stderr: "ignore" })
    .stdout.toString()
    .trim();
}

interface ChildRun {
  child: Bun.Subprocess<"ignore", "pipe", "pipe">;
  names: string[];
  pids: number[]; // its sshds and a sleep it spawned in h1
  link: string;
  dir: string;
  subnet: string;
}

/** Another process with a 2-host fixture, a process spawned in h1 and a block('local', h2);
 *  resolves once its fixture is up, with what it made. */
async function startChild(): Promise<ChildRun> {
  const mod = join(import.meta.dir, "multihost.ts");
  const script = [
    `const { startHosts } = await import(${JSON.stringify(mod)});`,
    "const f = await startHosts({ count: 2 });",
    `const sleeper = f.spawn("h1", ["sleep", "1000"]);`,
    "await f.block('local', 'h2');",
    "console.log(JSON.stringify({ names: [f.switchNs, ...f.hosts.map((h) => h.ns)], pids: [...f.hosts.map((h) => h.sshdPid), sleeper.pid], link: f.rootLink, dir: f.dir, subnet: f.subnet }));",
    "setInterval(() => {}, 1 << 30);",
  ].join("\n");
  const child = Bun.spawn([process.execPath, "-e", script], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const reader = child.stdout.getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`child exited before starting its fixture: ${await new Response(child.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { child, ...(JSON.parse(out) as Omit<ChildRun, "child">) };
}

describe.skipIf(!can.ok)(can.ok ? "multi-host fixture" : `multi-host fixture (skipped: ${can.why})`, () => {
  beforeAll(async () => {
    tmp = makeTmpDir("multihost-test");
    const t0 = performance.now();
    fx = await startHosts({ count: 3 });
    const ms = Math.round(performance.now() - t0);
    console.log(`[multihost] 3 hosts up in ${ms} ms: ${fx.hosts.map((h) => `${h.id}=${h.addr} (${h.ns})`).join(", ")}; local ${fx.localAddr}`);
  }, T);

  afterAll(async () => {
    try {
      await fx?.stop();
    } finally {
      fx = undefined;
      if (tmp) removeTmpDir(tmp);
    }
  }, T);

  test(
    "each host is its own namespace with lo up and its own sshd, reached by alias from here",
    async () => {
      const f = need();
      expect(f.hosts.map((h) => h.id)).toEqual(["h1", "h2", "h3"]);
      const inodes = new Set<number>();
      for (const h of f.hosts) {
        const ino = netnsInode(h.ns);
        expect(ino).toBeDefined();
        inodes.add(ino ?? 0);
        expect(pidsInNetns(new Set([ino ?? 0]))).toContain(h.sshdPid);
        const lo = await f.exec(h.id, ["ip", "-o", "link", "show", "dev", "lo"]);
        expect(lo.code).toBe(0);
        expect(lo.stdout).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
        expect(await whoAmI(f, h.id)).toEqual([f.localAddr, h.addr, String(h.port)]);
      }
      expect(inodes.size).toBe(3);
      expect(f.knownHostsText.trim().split("\n")).toHaveLength(3);
    },
    T,
  );

  test(
    "hosts reach each other's sshd with the same config, also from an ssh session (the --direct path)",
    async () => {
      const f = need();
      const pairs = f.hosts.flatMap((a) => f.hosts.filter((b) => b.id !== a.id).map((b) => [a, b] as const));
      const seen = await Promise.all(pairs.map(([a, b]) => whoAmI(f, b.id, a.id)));
      expect(seen).toEqual(pairs.map(([a, b]) => [a.addr, b.addr, String(b.port)]));
      // local -> h1 -> h2, as escp -3 --direct would: h1's shell runs ssh to h2.
      const r = await run(f.ssh("h1", [`ssh -F ${f.sshConfig} h2 'echo $SSH_CONNECTION'`]));
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(r.stdout.trim().split(" ")).toEqual([f.host("h1").addr, expect.any(String), f.host("h2").addr, "22"]);
    },
    T,
  );

  test(
    "scp -3 -F cfg h1:file h2:path copies the bytes",
    async () => {
      const f = need();
      const src = join(tmp, "scp3-src.bin");
      const dst = join(tmp, "scp3-dst.bin");
      const data = randomBytes(3 * 1024 * 1024 + 17);
      writeFileSync(src, data);
      const r = await run(["scp", "-3", "-F", f.sshConfig, `h1:${src}`, `h2:${dst}`]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(readFileSync(dst).equals(data)).toBe(true);
    },
    T,
  );

  test(
    "block(h1, h2) rejects h1<->h2 only; unblock restores it",
    async () => {
      const f = need();
      await f.block("h1", "h2");
      try {
        const a = await sshTrue(f, "h2", "h1");
        expect(a.code).toBe(255);
        expect(a.stderr).toContain("No route to host");
        const b = await sshTrue(f, "h1", "h2");
        expect(b.code).toBe(255);
        expect(b.stderr).toContain("No route to host");
        const ok = { code: 0, stderr: "" };
        expect(await Promise.all([sshTrue(f, "h1"), sshTrue(f, "h2"), sshTrue(f, "h3", "h1"), sshTrue(f, "h3", "h2")])).toEqual([ok, ok, ok, ok]);
      } finally {
        await f.unblock("h1", "h2");
      }
      expect(await sshTrue(f, "h2", "h1")).toEqual({ code: 0, stderr: "" });
      expect(await sshTrue(f, "h1", "h2")).toEqual({ code: 0, stderr: "" });
    },
    T,
  );

  test(
    "block(h1, h2, 'drop') silently drops: a connect hangs until the client gives up",
    async () => {
      const f = need();
      await f.block("h1", "h2", "drop");
      try {
        const a = await sshTrue(f, "h2", "h1", ["-o", "ConnectTimeout=1"]);
        expect(a.code).toBe(255);
        expect(a.stderr).toContain("timed out");
        expect(await sshTrue(f, "h2")).toEqual({ code: 0, stderr: "" });
        expect(await sshTrue(f, "h3", "h1")).toEqual({ code: 0, stderr: "" });
      } finally {
        await f.unblock("h1", "h2");
      }
      expect(await sshTrue(f, "h2", "h1")).toEqual({ code: 0, stderr: "" });
    },
    T,
  );

  test(
    "block('local', h2) cuts this host from h2 but not h1 from h2",
    async () => {
      const f = need();
      await f.block("local", "h2");
      try {
        const a = await sshTrue(f, "h2");
        expect(a.code).toBe(255);
        expect(a.stderr).toContain("No route to host");
        expect(await sshTrue(f, "h2", "h1")).toEqual({ code: 0, stderr: "" });
        expect(await sshTrue(f, "h1")).toEqual({ code: 0, stderr: "" });
      } finally {
        await f.unblock("local", "h2");
      }
      expect(rootRoutesIn(f.subnet)).not.toContain("unreachable");
      expect(await sshTrue(f, "h2")).toEqual({ code: 0, stderr: "" });
    },
    T,
  );

  test(
    "stop() leaves no namespace, process, link, route or temp dir, even with sessions open and a block in place",
    async () => {
      const g = await startHosts({ count: 2 });
      const names = [g.switchNs, ...g.hosts.map((h) => h.ns)];
      const inodes = new Set(names.map(netnsInode).filter((i): i is number => i !== undefined));
      expect(inodes.size).toBe(3);
      const sleeper = g.spawn("h1", ["sleep", "1000"]);
      const session = Bun.spawn(g.ssh("h2", ["sleep 1000"]), { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      await g.block("local", "h1"); // the one thing in the root namespace's routing table
      expect(rootRoutesIn(g.subnet)).toContain("unreachable");
      // The session is up once h2 runs its sleep.
      const deadline = Date.now() + 30_000;
      while (!pidsInNetns(inodes).some((p) => p !== sleeper.pid && commOf(p) === "sleep")) {
        if (Date.now() > deadline) throw new Error("the ssh session's sleep never showed up in h2");
        await Bun.sleep(10); // poll the condition
      }
      const sshdPids = g.hosts.map((h) => h.sshdPid);
      await g.stop();
      await Promise.all([sleeper.exited, session.exited]);
      const listed = netnsList();
      expect(names.filter((n) => listed.includes(n))).toEqual([]);
      expect(strayPids(inodes)).toEqual([]);
      expect(sshdPids.filter(running)).toEqual([]);
      expect(linkExists(g.rootLink)).toBe(false);
      expect(rootRoutesIn(g.subnet)).not.toContain("unreachable");
      expect(rootRoutesIn(g.subnet)).not.toContain(g.rootLink);
      expect(existsSync(g.dir)).toBe(false);
    },
    T,
  );

  test(
    "two fixtures side by side get their own names, subnets and bridges",
    async () => {
      const [a, b] = await Promise.all([startHosts({ count: 2 }), startHosts({ count: 2 })]);
      try {
        expect(a.subnet).not.toBe(b.subnet);
        expect(a.rootLink).not.toBe(b.rootLink);
        const namesA = [a.switchNs, ...a.hosts.map((h) => h.ns)];
        const namesB = [b.switchNs, ...b.hosts.map((h) => h.ns)];
        expect(namesA.filter((n) => namesB.includes(n))).toEqual([]);
        await Promise.all(
          [a, b].map(async (f) => {
            for (const h of f.hosts) expect(await whoAmI(f, h.id)).toEqual([f.localAddr, h.addr, "22"]);
            expect(await whoAmI(f, "h2", "h1")).toEqual([f.host("h1").addr, f.host("h2").addr, "22"]);
          }),
        );
        // No path between the two bridges: a's h1 has no route to b's subnet.
        const cross = await a.exec("h1", ["ssh", "-F", b.sshConfig, "h1", "true"]);
        expect(cross.code).toBe(255);
        expect(cross.stderr).toContain("Network is unreachable");
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    },
    T,
  );

  test(
    "a start that fails (sshd rejects its config) leaves nothing behind",
    async () => {
      const mine = (): string[] => netnsList().filter((n) => n.startsWith(`escp-mh-${process.pid}-`) && !n.startsWith(need().switchNs.slice(0, -2)));
      expect(mine()).toEqual([]);
      let err = "";
      try {
        const g = await startHosts({ count: 2, port: 65536 });
        await g.stop();
      } catch (e) {
        err = (e as Error).message;
      }
      expect(err).toContain("failed to start");
      expect(mine()).toEqual([]);
    },
    T,
  );

  test(
    "a SIGTERMed run tears its hosts down on the way out",
    async () => {
      const left = await startChild();
      const inodes = new Set(left.names.map(netnsInode).filter((i): i is number => i !== undefined));
      left.child.kill("SIGTERM");
      expect(await left.child.exited).toBe(143);
      const listed = netnsList();
      expect(left.names.filter((n) => listed.includes(n))).toEqual([]);
      expect(strayPids(inodes)).toEqual([]);
      expect(left.pids.filter(running)).toEqual([]);
      expect(linkExists(left.link)).toBe(false);
      expect(rootRoutesIn(left.subnet)).not.toContain("unreachable");
      expect(existsSync(left.dir)).toBe(false);
    },
    T,
  );

  test(
    "the namespaces and processes of a SIGKILLed run are reaped by the next startHosts()",
    async () => {
      const left = await startChild();
      const inodes = new Set(left.names.map(netnsInode).filter((i): i is number => i !== undefined));
      left.child.kill("SIGKILL");
      await left.child.exited;
      // What the dead run left: its namespaces, sshds, a process in h1, its link, route and dir.
      expect(left.names.filter((n) => netnsList().includes(n))).toEqual(left.names);
      expect(left.pids.filter(running)).toEqual(left.pids);
      expect(linkExists(left.link)).toBe(true);
      expect(rootRoutesIn(left.subnet)).toContain("unreachable");
      expect(existsSync(left.dir)).toBe(true);

      const g = await startHosts({ count: 2 });
      try {
        const listed = netnsList();
        expect(left.names.filter((n) => listed.includes(n))).toEqual([]);
        expect(strayPids(inodes)).toEqual([]);
        expect(left.pids.filter(running)).toEqual([]);
        expect(linkExists(left.link)).toBe(false);
        expect(rootRoutesIn(left.subnet)).not.toContain("unreachable");
        expect(rootRoutesIn(left.subnet)).not.toContain(left.link);
        expect(existsSync(left.dir)).toBe(false);
        expect(await whoAmI(g, "h1")).toEqual([g.localAddr, g.host("h1").addr, "22"]);
      } finally {
        await g.stop();
      }
    },
    T,
  );
});
