// `bun run bench:macro [options]`: whole transfers of catalog datasets, escp beside its peers
// (scp, sftp, rsync -e ssh, tar | ssh, the original EScp, iperf3 as the network limit, dd and
// cp as the disk limits), all measured in the same run, every copy verified, host facts and
// results written as JSON (shape: bench/macro/writer.ts). Options: bench/macro/options.ts.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { makeTmpDir, onExitCleanup, removeTmpDir } from "../../harness/tmp-dir.ts";
import { resumeFigures, resumeRows } from "../lib/resume.ts";
import {
  caseId,
  type CaseResult,
  type Interrupted,
  type MacroResults,
  primaryMetric,
  type Repeat,
  type ScenarioInfo,
  SCHEMA,
  type Skipped,
  toolName,
  type Tool,
} from "../lib/results.ts";
import { type CpuMeter, openCpuMeter } from "./cpuacct.ts";
import { materialize, type Materialized } from "./datasets.ts";
import { type MultiHostEnv, openLoopback, openMultiHost, openWan, WAN_PARAMS, type WanEnv } from "./endpoints.ts";
import { hostFacts, loadNow } from "./host.ts";
import { runProc } from "./proc.ts";
import { freePort, iperfPlan, startIperfServer, type IperfServer } from "./iperf3.ts";
import { baselineOf, type Judged, measureRepeat, PageCache, type RepeatPlan, settle } from "./measure.ts";
import { parseOptions, type Options, UsageError, USAGE } from "./options.ts";
import { buildMatrix, type CaseSpec, labelOf, peerEnabled, type ScenarioSpec } from "./scenarios.ts";
import { buildSystemCommand, inventory, inventoryLines, type SystemTree, verifySystemCopy } from "./systree.ts";
import { binaryOf, buildCommand, summarySeconds, toolFits, type Endpoint } from "./tools.ts";
import { verifyCopy, verifyNothingWritten } from "./verify.ts";
import { defaultOutPath, summarize, writeResults } from "./writer.ts";

const log = (msg: string): void => console.log(msg);

function fmt(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined ? "-" : x.toFixed(digits);
}

/** Why a tool cannot run here, or null when it can. */
function missing(tool: Tool, o: Options): string | null {
  if (tool === "escp-orig" && o.peerEscp === undefined) return "original EScp not given (--peer-escp PATH)";
  const bin = binaryOf(tool, o.peerEscp);
  if (bin === undefined) return null;
  if (bin.includes("/")) {
    try {
      return statSync(bin).isFile() ? null : `${bin} is not a file`;
    } catch {
      return `${bin} not found`;
    }
  }
  return Bun.which(bin) === null ? `${bin} is not installed` : null;
}

/** The transmit-side engine of escp/EScp flags. */
function txEngine(flags: readonly string[]): string {
  const i = flags.indexOf("--ioengine");
  return (i >= 0 ? (flags[i + 1] ?? "posix") : "posix").split("::")[0] ?? "posix";
}

/** The --logfile of run `n` (under the scratch dir, outside the destination), fresh. */
function logfileOf(ep: Endpoint, n: number, what: string): string {
  const base = join(ep.scratch, `escp-${n}-${what}.log`);
  for (const f of [`${base}.client`, `${base}.server`]) rmSync(f, { force: true });
  return base;
}

interface SessionDone {
  files?: number;
  bytes?: number;
  resumed?: number;
  failed?: number;
  seconds?: number;
}

/** The initiator's last "session done" record of a --logfile run, or null. */
function sessionDone(logfile: string): SessionDone | null {
  let text: string;
  try {
    text = readFileSync(`${logfile}.client`, "utf8");
  } catch {
    return null;
  }
  let last: SessionDone | null = null;
  for (const line of text.split("\n")) {
    if (!line.includes("session done")) continue;
    try {
      const rec = JSON.parse(line) as { msg?: string; fields?: SessionDone };
      if (rec.msg === "session done" && rec.fields) last = rec.fields;
    } catch {
      // a torn line: ignore
    }
  }
  return last;
}

/** The hidden partial and journal escp keeps beside `dst` while a file is incomplete. */
function partialPaths(dst: string): { part: string; journal: string } {
  const dir = dirname(dst);
  const name = basename(dst);
  return { part: join(dir, `.${name}.escp-part`), journal: join(dir, `.${name}.escp-journal`) };
}

const sizeOrNull = (path: string): number | null => {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
};

/** A rerun case's UNTIMED first run: the same push, its receiver (the sshd's side) signalled
 *  once it has written `at` × the bytes (ESCP_FAULT_KILL_BYTES in the remote environment);
 *  waits until the receiver is gone (a SIGTERMed one seals its partial first) and checks
 *  that it left a partial and a journal to resume. */
async function interruptedRun(c: CaseSpec, ds: Materialized, runDir: string, ep: Endpoint, o: Options, n: number, cpu: CpuMeter): Promise<Interrupted> {
  const spec = c.interrupt ?? { at: 0.5, signal: "KILL" as const };
  const killAtBytes = Math.floor(ds.bytes * spec.at);
  const hook = `ESCP_FAULT_KILL_BYTES=receiver:${killAtBytes}${spec.signal === "TERM" ? ":TERM" : ""}`;
  const cmd = buildCommand(c, ds, runDir, ep, o.peerEscp, n, { remoteEnv: [hook], ...(c.logfile ? { logfile: logfileOf(ep, n, "interrupted") } : {}) });
  const baseline = baselineOf(cpu, ep.receiverRoot);
  const res = await runProc(cpu.wrap(cmd.argv), { timeoutMs: 180_000 + Math.round((ds.bytes / 5e6) * 1000), cwd: runDir });
  const gone = await settle(cpu, baseline, ep.receiverRoot, undefined, 60_000);
  const { part, journal } = partialPaths(cmd.dst);
  const out: Interrupted = {
    signal: spec.signal,
    killAtBytes,
    wallS: Math.round(res.wallS * 1000) / 1000,
    exitCode: res.code,
    partialBytes: sizeOrNull(part),
    journalBytes: sizeOrNull(journal),
  };
  if (res.code === 0) out.error = `the first run was not interrupted (exit 0; receiver hook ${hook})`;
  else if (!gone) out.error = "the interrupted receiver was still running 60 s after the first run ended";
  else if (out.partialBytes === null) out.error = `the interrupted run left no partial ${basename(part)} (exit ${res.code}: ${res.stderr.trim().slice(-200)})`;
  else if (out.journalBytes === null) out.error = `the interrupted run left no journal ${basename(journal)}`;
  return out;
}

/** A disk run's time limit: 3 min, plus 1 s per 5 MB, plus 3 ms per file (1,000,000 files:
 *  ≈ 1 h; the slowest peer here copies a few thousand small files per second). */
function diskTimeoutMs(bytes: number, files: number): number {
  return 180_000 + Math.round((bytes / 5e6) * 1000) + 3 * files;
}

function diskPlan(c: CaseSpec, ds: Materialized, runDir: string, ep: Endpoint, o: Options, n: number, interrupted?: Interrupted): RepeatPlan {
  const logfile = c.tool === "escp" && c.logfile ? logfileOf(ep, n, "timed") : undefined;
  const cmd = buildCommand(c, ds, runDir, ep, o.peerEscp, n, logfile !== undefined ? { logfile } : {});
  return {
    argv: cmd.argv,
    timeoutMs: diskTimeoutMs(ds.bytes, ds.files),
    drop: txEngine(c.flags) !== "dummy",
    syncDir: runDir,
    receiverRoot: ["dd", "cp"].includes(c.tool) ? null : ep.receiverRoot,
    bytes: ds.bytes,
    files: ds.files,
    cwd: runDir,
    async judge(res) {
      const toolSeconds = cmd.toolSeconds?.(res.stdout) ?? null;
      const extra: Judged["extra"] = interrupted ? { interrupted } : {};
      if (res.code !== 0) return { verdict: { ok: false }, toolSeconds, extra };
      if (interrupted?.error !== undefined) return { verdict: { ok: false, error: interrupted.error }, toolSeconds, extra };
      if (logfile !== undefined) {
        const done = sessionDone(logfile);
        if (done === null || typeof done.resumed !== "number")
          return { verdict: { ok: false, error: `no "session done" record with "resumed" in ${logfile}.client` }, toolSeconds, extra };
        extra.resumedBytes = done.resumed;
        extra.movedBytes = ds.bytes - done.resumed;
        if (interrupted && done.resumed <= 0)
          return { verdict: { ok: false, error: "the rerun resumed nothing (resumed 0 in the session-done record)" }, toolSeconds, extra };
        // Nothing but the copy may be left: no partial, no journal.
        const { part, journal } = partialPaths(cmd.dst);
        const left = [part, journal].filter((p) => existsSync(p)).map((p) => basename(p));
        if (left.length > 0) return { verdict: { ok: false, error: `left behind after success: ${left.join(", ")}` }, toolSeconds, extra };
      }
      if (c.tool === "escp-orig" && summarySeconds(res.stdout) === null) {
        // The original exits 0 even when ssh or the handshake failed.
        return { verdict: { ok: false, error: `no "Sent" summary line (the original exits 0 on failures): ${res.stderr.trim().slice(-300)}` }, toolSeconds };
      }
      const verdict = cmd.nothingWritten ? verifyNothingWritten(runDir) : await verifyCopy(ds, cmd.dst);
      return { verdict, toolSeconds, extra };
    },
  };
}

/** system-tree: the sources copied with archive semantics into runDir, every copy checked
 *  with rsync --dry-run --itemize-changes against its source. */
function systemPlan(c: CaseSpec, sources: readonly string[], tree: SystemTree, runDir: string, ep: Endpoint): RepeatPlan {
  const cmd = buildSystemCommand(c, sources, runDir, ep);
  return {
    argv: cmd.argv,
    timeoutMs: 180_000 + Math.round((tree.total.bytesAllPaths / 5e6) * 1000),
    drop: true,
    syncDir: runDir,
    receiverRoot: c.tool === "cp" ? null : ep.receiverRoot,
    bytes: tree.total.bytes,
    files: tree.total.files,
    cwd: runDir,
    async judge(res) {
      const toolSeconds = cmd.toolSeconds?.(res.stdout) ?? null;
      if (res.code !== 0) return { verdict: { ok: false }, toolSeconds };
      return { verdict: await verifySystemCopy(sources, runDir, c.hardLinks === true), toolSeconds };
    },
  };
}

function interruptedLine(s: ScenarioSpec, c: CaseSpec, i: number, x: Interrupted): string {
  const what = `[${s.name}] ${toolName(c.tool)} ${labelOf(c)} #${i + 1}`.padEnd(52);
  const mib = (b: number | null): string => (b === null ? "none" : `${(b / 2 ** 20).toFixed(0)} MiB`);
  return `${what} first run (untimed, SIG${x.signal} at ${mib(x.killAtBytes)}): ${fmt(x.wallS, 2)} s, exit ${x.exitCode}, partial ${mib(x.partialBytes)}, journal ${x.journalBytes ?? "none"} B${x.error ? `  PROBLEM: ${x.error}` : ""}`;
}

/** " split s/GiB snd X rcv Y ssh Z sshd W" (seconds, "split s …", when there is no
 *  per-GiB figure: no bytes, or a failed run); "" without a split. */
function splitText(r: Repeat): string {
  const x = r.cpuSplitSPerGiB ?? r.cpuSplitS;
  if (x === undefined) return "";
  const unit = r.cpuSplitSPerGiB ? "s/GiB" : "s";
  return ` split ${unit} snd ${fmt(x.sender)} rcv ${fmt(x.receiver)} ssh ${fmt(x.ssh)} sshd ${fmt(x.sshd)}`;
}

function repeatLine(s: ScenarioSpec, c: CaseSpec, i: number, r: Repeat): string {
  const what = `[${s.name}] ${toolName(c.tool)} ${labelOf(c)} #${i + 1}`.padEnd(52);
  const rate =
    r.filesPerS !== null && s.name === "losf"
      ? `${fmt(r.filesPerS, 0)} files/s`
      : r.filesPerS !== null && primaryMetric(s.name) === "filesPerS"
        ? `${fmt(r.filesPerS, 0)} files/s ${fmt(r.gbps === null ? null : r.gbps * 1000, 0)} MB/s`
        : `${fmt(r.gbps, 3)} GB/s`;
  const tool = r.toolGbps !== undefined && c.tool !== "iperf3" ? ` (own ${fmt(r.toolGbps, 3)})` : "";
  const moved =
    r.movedBytes !== undefined && r.resumedBytes ? ` moved ${(r.movedBytes / 2 ** 20).toFixed(0)} MiB (resumed ${(r.resumedBytes / 2 ** 20).toFixed(0)})` : "";
  const cpu = r.cpuSPerGiB !== null ? ` cpu ${fmt(r.cpuS, 1)} s = ${fmt(r.cpuSPerGiB, 2)} s/GiB` : "";
  const rss = ` rss ${fmt(r.rssSenderMiB, 0)}/${fmt(r.rssReceiverMiB, 0)} MiB`;
  return `${what} ${fmt(r.wallS, 2)} s  ${rate}${tool}${moved}${cpu}${splitText(r)}${rss}  ${r.verified ? "verified" : `FAILED: ${r.error ?? "?"}`}`;
}

/** The medians of a files/s scenario's cases as a small table: files/s, × the reference, wall,
 *  and the peak RSS of the sender and the receiver side (what issue 13 asks of the many-file
 *  runs; bench:report prints the same columns in markdown). */
function mediansTable(s: ScenarioSpec, results: readonly CaseResult[]): string[] {
  const refs = results.filter((c) => s.reference.some((r) => r.tool === c.tool && r.label === c.label) && c.median?.filesPerS != null);
  const ref = refs.reduce<CaseResult | null>((best, c) => (best === null || (c.median?.filesPerS ?? 0) > (best.median?.filesPerS ?? 0) ? c : best), null);
  const refV = ref?.median?.filesPerS ?? null;
  const rows = [["tool", "config", "files/s", "× ref", "wall s", "RSS sender MiB", "RSS receiver MiB", "verified"]];
  for (const c of results) {
    const m = c.median;
    const ok = c.repeats.filter((r) => r.verified).length;
    rows.push([
      toolName(c.tool) + (c === ref ? " (ref)" : ""),
      c.label,
      m?.filesPerS != null ? Math.round(m.filesPerS).toLocaleString("en-US") : "-",
      m?.filesPerS != null && refV ? `${(m.filesPerS / refV).toFixed(2)}×` : "-",
      fmt(m?.wallS, 2),
      fmt(m?.rssSenderMiB, 0),
      fmt(m?.rssReceiverMiB, 0),
      `${ok}/${c.repeats.length}`,
    ]);
  }
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return rows.map((r) => `  ${r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join("  ")}`);
}

async function main(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message === USAGE) {
        console.log(USAGE);
        return 0;
      }
      console.error(`bench:macro: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (o.peerEscp !== undefined) o.peerEscp = resolve(o.peerEscp);
  const started = new Date();
  const work = resolve(o.work);
  mkdirSync(work, { recursive: true });
  const runRoot = join(work, `run-${process.pid}`);
  // Copies of trees are moved aside and deleted only at the end: on ext4 without a journal
  // (this machine) inode allocation skips inodes freed in the last 60-300 s one by one, so
  // deleting 10,000 files right before the next run made every tool's next small-file run
  // two to three times slower (docs/performance.md).
  const aside = join(work, `aside-${process.pid}`);
  const removeScratchTrees = (): void => {
    rmSync(runRoot, { recursive: true, force: true });
    rmSync(aside, { recursive: true, force: true });
  };
  const unregisterRunRoot = onExitCleanup(removeScratchTrees);
  const scratch = makeTmpDir("bench-macro");
  const cpu = openCpuMeter();
  const cache = new PageCache(o.dropCaches);
  const host = hostFacts(work, o.peerEscp);
  const matrix = buildMatrix(o);
  const scenarios: ScenarioInfo[] = [];
  const cases: CaseResult[] = [];
  const skipped: Skipped[] = [];
  const notes: string[] = [];
  const skip = (s: Skipped): void => {
    skipped.push(s);
    log(`skip: [${s.scenario}] ${toolName(s.tool)}${s.label ? ` ${s.label}` : ""}: ${s.reason}`);
  };
  log(`bench:macro ${o.smoke ? "smoke" : "full"}: ${matrix.map((s) => s.name).join(", ")}; work ${work}; CPU accounting ${cpu.mode}`);
  log(`host: ${host.cpuModel}, ${host.nproc} CPUs, ${host.kernel}, Bun ${host.bun}, ${host.fsType} (${host.fsSource}), load ${host.loadavgBefore.join(" ")}`);

  let loop: Awaited<ReturnType<typeof openLoopback>> | undefined;
  let wanEnv: WanEnv | undefined;
  let mhEnv: MultiHostEnv | undefined;
  let counter = 0;
  let escpFailures = 0;
  try {
    try {
      loop = await openLoopback(cpu, scratch, o.quietLogin === true);
    } catch (e) {
      console.error(`bench:macro: cannot start the loopback sshd: ${(e as Error).message}`);
      return 1;
    }
    for (const s of matrix) {
      const info: ScenarioInfo = { name: s.name, title: s.title, reference: s.reference.map((r) => caseId(s.name, r.tool, r.label)) };
      if (s.note) info.note = s.note;
      scenarios.push(info);
      log(`\n== ${s.name}: ${s.title}`);
      let ep: Endpoint = loop.endpoint;
      if (s.transport === "wan") {
        try {
          const w = await openWan(cpu, loop.fx, scratch);
          if (typeof w === "string") {
            for (const c of s.cases) skip({ scenario: s.name, tool: c.tool, label: labelOf(c), reason: `WAN emulation unavailable: ${w}` });
            continue;
          }
          wanEnv = w;
          ep = w.endpoint;
          info.meta = { link: { ...WAN_PARAMS, rttMs: 2 * WAN_PARAMS.delayMs }, rttProbe: w.rtt };
          log(`WAN ${w.wan.ns.a} ${w.wan.addr.a} → ${w.wan.ns.b} ${w.wan.addr.b}; RTT probe min ${fmt(w.rtt?.minMs, 1)} ms`);
        } catch (e) {
          for (const c of s.cases)
            skip({ scenario: s.name, tool: c.tool, label: labelOf(c), reason: `WAN emulation failed to start: ${(e as Error).message}` });
          continue;
        }
      }
      if (s.transport === "multihost") {
        try {
          const m = await openMultiHost(cpu, scratch);
          if (typeof m === "string") {
            for (const c of s.cases) skip({ scenario: s.name, tool: c.tool, label: labelOf(c), reason: `multi-host fixture unavailable: ${m}` });
            continue;
          }
          mhEnv = m;
          ep = m.endpoint;
          info.meta = { hosts: m.fx.hosts.map((h) => ({ id: h.id, addr: h.addr })), local: m.fx.localAddr };
          log(`hosts ${m.fx.hosts.map((h) => `${h.id} ${h.addr} (${h.ns})`).join(", ")}; this host ${m.fx.localAddr}`);
        } catch (e) {
          for (const c of s.cases)
            skip({ scenario: s.name, tool: c.tool, label: labelOf(c), reason: `multi-host fixture failed to start: ${(e as Error).message}` });
          continue;
        }
      }
      const active: { c: CaseSpec; result: CaseResult }[] = [];
      try {
        const ds = s.dataset ? await materialize(s.dataset, work, log) : null;
        if (ds) {
          log(
            `dataset ${ds.ref.name} ${JSON.stringify(ds.ref.params)}: ${ds.files} files, ${(ds.bytes / 2 ** 20).toFixed(1)} MiB${ds.made ? ` (made in ${ds.seconds.toFixed(1)} s)` : " (cached)"}`,
          );
          // Generation time (the manifest's b3sum included) of a dataset made by this run.
          if (ds.made && ds.kind === "tree") info.meta = { ...info.meta, datasetMadeS: Math.round(ds.seconds * 10) / 10 };
        }
        if (ds?.kind === "tree" && s.copies === "delete" && !o.dropCaches) {
          notes.push(
            `${s.name}: copies deleted between runs without dropping the page cache (--smoke / --no-drop-caches): on ext4 without a journal the next run's file creation skips the freed inodes one by one, so later runs may be slower`,
          );
        }
        // Real directories (system-tree): counted with lstat before the runs.
        let sys: SystemTree | null = null;
        if (s.system) {
          try {
            sys = inventory(s.system.sources);
          } catch (e) {
            for (const c of s.cases) skip({ scenario: s.name, tool: c.tool, label: labelOf(c), reason: `sources unavailable: ${(e as Error).message}` });
            continue;
          }
          info.meta = { sources: sys.sources, total: sys.total };
          for (const line of inventoryLines(sys)) log(line);
        }
        const sysDataset = sys
          ? {
              name: s.name,
              params: {
                dirs: sys.total.dirs,
                symlinks: sys.total.symlinks,
                hardlinks: sys.total.hardlinks,
                other: sys.total.other,
                bytesAllPaths: sys.total.bytesAllPaths,
              },
              bytes: sys.total.bytes,
              files: sys.total.files,
            }
          : null;
        for (const c of s.cases) {
          const label = labelOf(c);
          if (!peerEnabled(c.tool, o.peers)) {
            skip({ scenario: s.name, tool: c.tool, label, reason: "not selected (--peers)" });
            continue;
          }
          if (o.only && !o.only.some((part) => caseId(s.name, c.tool, label).includes(part))) {
            skip({ scenario: s.name, tool: c.tool, label, reason: "not selected (--only)" });
            continue;
          }
          const why =
            c.unsupported ?? missing(c.tool, o) ?? (ds && c.tool !== "iperf3" && !toolFits(c.tool, ds.kind) ? `${c.tool} does not copy a ${ds.kind}` : null);
          if (why !== null) {
            skip({ scenario: s.name, tool: c.tool, label, reason: why });
            continue;
          }
          const ref = s.reference.some((r) => r.tool === c.tool && r.label === label);
          active.push({
            c,
            result: {
              id: caseId(s.name, c.tool, label),
              scenario: s.name,
              tool: c.tool,
              label,
              config: [...c.flags],
              dataset: ds && c.tool !== "iperf3" ? { name: ds.ref.name, params: ds.ref.params, bytes: ds.bytes, files: ds.files } : sysDataset,
              bytes: c.tool === "iperf3" ? 0 : (ds?.bytes ?? sysDataset?.bytes ?? 0),
              files: c.tool === "iperf3" ? 0 : (ds?.files ?? sysDataset?.files ?? 0),
              reference: ref,
              repeats: [],
              median: null,
            },
          });
        }
        let iperf: IperfServer | undefined;
        if (active.some((a) => a.c.tool === "iperf3")) {
          try {
            iperf =
              ep.kind === "wan" && wanEnv
                ? await startIperfServer(cpu, wanEnv.wan.argv("b", []), ep.host, 5201)
                : await startIperfServer(cpu, [], "127.0.0.1", await freePort());
          } catch (e) {
            for (const a of active.filter((x) => x.c.tool === "iperf3")) a.result.error = `iperf3 server: ${(e as Error).message}`;
          }
        }
        try {
          // Repeats interleave the cases (round 1 of every case, then round 2, ...), so a
          // change in the machine's background load hits every tool alike.
          for (let i = 0; i < s.repeats; i++) {
            for (const a of active) {
              if (a.result.error !== undefined || i >= (a.c.repeats ?? s.repeats)) continue;
              const runDir = join(runRoot, String(++counter));
              rmSync(runRoot, { recursive: true, force: true });
              mkdirSync(runDir, { recursive: true });
              let plan: RepeatPlan;
              if (a.c.tool === "iperf3") {
                if (!iperf) continue;
                plan = iperfPlan(iperf, ep.senderPrefix, a.c.streams ?? 1, s.iperfSeconds);
              } else if (ds) {
                const interrupted = a.c.interrupt ? await interruptedRun(a.c, ds, runDir, ep, o, counter, cpu) : undefined;
                if (interrupted) log(interruptedLine(s, a.c, i, interrupted));
                plan = diskPlan(a.c, ds, runDir, ep, o, counter, interrupted);
              } else if (sys && s.system) {
                plan = systemPlan(a.c, s.system.sources, sys, runDir, ep);
              } else continue;
              const r = await measureRepeat(cpu, cache, plan);
              a.result.repeats.push(r);
              log(repeatLine(s, a.c, i, r));
              if (ds?.kind === "tree" && s.copies === "delete") {
                // One copy at a time (files-1m): deleted now, outside the timed window, and
                // synced, so the next run's page-cache drop also forgets the freed inodes.
                const del = await runProc(["rm", "-rf", "--", runDir], { timeoutMs: 3_600_000 });
                const synced = await runProc(["sync", "-f", work], { timeoutMs: 600_000 });
                log(
                  `[${s.name}] copy deleted in ${fmt(del.wallS + synced.wallS, 1)} s${del.code !== 0 ? ` (rm exit ${del.code}: ${del.stderr.trim().slice(-200)})` : ""}`,
                );
              } else if (ds?.kind === "tree" || sys) {
                mkdirSync(aside, { recursive: true });
                renameSync(runDir, join(aside, String(counter)));
              } else rmSync(runDir, { recursive: true, force: true });
            }
          }
        } finally {
          await iperf?.daemon.stop();
        }
      } catch (e) {
        // A broken scenario (dataset cannot be made, disk full, ...) is reported; the rest run.
        const msg = `scenario ${s.name} aborted: ${(e as Error).message}`;
        notes.push(msg);
        console.error(`bench:macro: ${msg}`);
      } finally {
        for (const a of active) {
          a.result.median = summarize(a.result.repeats);
          if (a.result.tool === "escp" && (a.result.repeats.length === 0 || a.result.repeats.some((r) => !r.verified))) escpFailures++;
          if (a.result.tool === "iperf3" && a.result.median) a.result.bytes = Math.round(a.result.repeats.find((r) => r.verified)?.bytes ?? 0);
          cases.push(a.result);
        }
        if (primaryMetric(s.name) === "filesPerS" && active.length > 0) {
          log(`[${s.name}] medians:`);
          for (const line of mediansTable(
            s,
            active.map((a) => a.result),
          ))
            log(line);
        }
        if (s.name === "resume") {
          const f = resumeFigures(active.map((a) => a.result));
          if (f) {
            info.meta = { resume: f };
            for (const [target, measured, verdict] of resumeRows(f)) log(`  ${target}: ${measured} → ${(verdict ?? "").replace(/\*/g, "")}`);
          }
        }
        if (wanEnv) {
          await wanEnv.stop();
          wanEnv = undefined;
        }
        if (mhEnv) {
          await mhEnv.stop();
          mhEnv = undefined;
        }
      }
    }
  } finally {
    await wanEnv?.stop();
    await mhEnv?.stop();
    await loop?.stop();
    cpu.close();
    removeScratchTrees();
    unregisterRunRoot();
    removeTmpDir(scratch);
  }
  host.loadavgAfter = loadNow();
  if (cpu.partial) notes.push(cpu.note);
  if (o.quietLogin)
    notes.push(
      "--quiet-login: the loopback sshd's login shell read an empty ~/.bashrc (every ssh tool's remote command started without the user's shell set-up)",
    );
  if (o.peerEscp === undefined) notes.push("the original EScp was not run: pass its binary with --peer-escp PATH (used on both sides through -D)");
  const finished = new Date();
  const results: MacroResults = {
    schema: SCHEMA,
    mode: o.smoke ? "smoke" : "full",
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: Math.round((finished.getTime() - started.getTime()) / 100) / 10,
    options: {
      scenarios: o.scenarios,
      repeat: o.repeat ?? null,
      size: o.size ?? null,
      files: o.files ?? null,
      peers: o.peers,
      peerEscp: o.peerEscp ?? null,
      work,
      dropCaches: o.dropCaches,
      only: o.only ?? null,
      quietLogin: o.quietLogin === true,
    },
    host,
    cpuAccounting: { mode: cpu.mode, partial: cpu.partial, note: cpu.note },
    pageCache: { drop: o.dropCaches, note: cache.note() },
    scenarios,
    cases,
    skipped,
    notes,
  };
  const out = o.out !== undefined ? resolve(o.out) : defaultOutPath(o.smoke, host.gitShort);
  writeResults(out, results);
  const unverified = cases.filter((c) => c.repeats.some((r) => !r.verified));
  log(
    `\n${cases.length} cases, ${cases.reduce((n, c) => n + c.repeats.length, 0)} runs, ${skipped.length} skipped, ${unverified.length} with failed runs; ${results.durationS} s`,
  );
  for (const c of unverified) log(`  failed: ${c.id}: ${c.repeats.find((r) => !r.verified)?.error ?? c.error ?? "?"}`);
  log(`results: ${out}${existsSync(out) ? "" : " (NOT WRITTEN)"}`);
  return escpFailures > 0 ? 1 : 0;
}

process.exit(await main(process.argv.slice(2)));
