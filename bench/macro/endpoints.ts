// The places transfers go: the harness's loopback sshd (started inside the CPU group so
// its session children are accounted), an sshd inside namespace b of an emulated WAN
// (harness/wan: 25 ms each way, 1 Gbit/s, no loss) reached from namespace a, and the
// multi-host fixture's two hosts (harness/multihost.ts) for third-party copies h1 → h2.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sshdConfigText, startSshd, type SshdFixture } from "../../harness/sshd.ts";
import { canWan, startWan, type Wan } from "../../harness/wan/netns.ts";
import { canMultiHost, type MultiHost, startHosts } from "../../harness/multihost.ts";
import type { RttResult } from "../../harness/wan/rtt-probe.ts";
import { REPO_ROOT } from "../../harness/escp-run.ts";
import type { CpuMeter } from "./cpuacct.ts";
import { childrenOf, runProc, startDaemon, type Daemon } from "./proc.ts";
import { SSH_CLIENT_OPTIONS, writeSshConfig, type Endpoint } from "./tools.ts";

export interface Loopback {
  fx: SshdFixture;
  endpoint: Endpoint;
  stop(): Promise<void>;
}

export async function openLoopback(cpu: CpuMeter, scratch: string, quietLogin = false): Promise<Loopback> {
  const before = new Set(childrenOf(process.pid, "sshd"));
  const fx = await cpu.inside(() => startSshd({ quietLogin }));
  const listener = childrenOf(process.pid, "sshd").find((p) => !before.has(p)) ?? null;
  const endpoint: Endpoint = {
    kind: "loopback",
    host: fx.host,
    user: fx.user,
    port: fx.port,
    identity: fx.identity,
    sshConfig: writeSshConfig(join(scratch, "ssh_config"), { port: fx.port, user: fx.user, identity: fx.identity }),
    escpSshArgs: fx.sshArgs,
    senderPrefix: [],
    receiverRoot: listener,
    scratch,
  };
  return { fx, endpoint, stop: () => fx.stop() };
}

export interface WanEnv {
  wan: Wan;
  endpoint: Endpoint;
  rtt: RttResult | null;
  stop(): Promise<void>;
}

export const WAN_PARAMS = { delayMs: 25, rateMbit: 1000, lossPct: 0, seed: 1, queueKib: 4096 } as const;

/** The WAN endpoint, or a reason it cannot be built here (the scenario is then skipped). */
export async function openWan(cpu: CpuMeter, fx: SshdFixture, scratch: string): Promise<WanEnv | string> {
  const can = canWan();
  if (!can.ok) return can.why;
  const wan = await startWan({ ...WAN_PARAMS, maxSeconds: 3600 });
  let sshd: Daemon | undefined;
  try {
    const dir = join(scratch, "wan-sshd");
    mkdirSync(dir, { recursive: true });
    const hostKey = join(dir, "host_ed25519");
    const kg = await runProc(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey], { timeoutMs: 30_000 });
    if (kg.code !== 0) throw new Error(`ssh-keygen: ${kg.stderr.trim()}`);
    writeFileSync(join(dir, "authorized_keys"), readFileSync(`${fx.identity}.pub`, "utf8"));
    const cfg = join(dir, "sshd_config");
    writeFileSync(cfg, sshdConfigText({ dir, listen: wan.addr.b, port: 22, hostKey }));
    sshd = startDaemon(cpu.wrap(wan.argv("b", ["/usr/sbin/sshd", "-D", "-e", "-f", cfg])));
    await sshd.waitFor(`Server listening on ${wan.addr.b} port 22`, 20_000);
    const probe = await wan.exec("a", [process.execPath, join(REPO_ROOT, "harness/wan/rtt-probe.ts"), wan.addr.b, "5"], { timeoutMs: 60_000 });
    const rtt = probe.code === 0 ? (JSON.parse(probe.stdout) as RttResult) : null;
    const endpoint: Endpoint = {
      kind: "wan",
      host: wan.addr.b,
      user: fx.user,
      port: 22,
      identity: fx.identity,
      sshConfig: writeSshConfig(join(scratch, "ssh_config_wan"), { port: 22, user: fx.user, identity: fx.identity }),
      escpSshArgs: ["-P", "22", "-i", fx.identity, ...SSH_CLIENT_OPTIONS.flatMap((o) => ["-o", o.replace(" ", "=")])],
      senderPrefix: ["ip", "netns", "exec", wan.ns.a],
      receiverRoot: sshd.pid,
      scratch,
    };
    const daemon = sshd;
    return {
      wan,
      endpoint,
      rtt,
      async stop() {
        await daemon.stop();
        await wan.stop();
      },
    };
  } catch (e) {
    await sshd?.stop();
    await wan.stop();
    throw e;
  }
}

export interface MultiHostEnv {
  fx: MultiHost;
  endpoint: Endpoint;
  stop(): Promise<void>;
}

/** Two namespaced hosts, their sshds started inside the CPU group (so both servers of a
 *  third-party copy are accounted): the source is read on h1, written on h2. Or a reason
 *  the fixture cannot be built here (the scenario is then skipped). */
export async function openMultiHost(cpu: CpuMeter, scratch: string): Promise<MultiHostEnv | string> {
  const can = canMultiHost();
  if (!can.ok) return can.why;
  const fx = await cpu.inside(() => startHosts({ count: 2 }));
  const h2 = fx.host("h2");
  const endpoint: Endpoint = {
    kind: "multihost",
    host: "h2",
    sourceHost: "h1",
    user: fx.user,
    port: h2.port,
    identity: fx.identity,
    sshConfig: fx.sshConfig,
    escpSshArgs: ["-F", fx.sshConfig],
    senderPrefix: [],
    receiverRoot: h2.sshdPid,
    scratch,
  };
  return { fx, endpoint, stop: () => fx.stop() };
}
