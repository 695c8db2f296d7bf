// Manual (and benchmark) runs of escp across the emulated WAN: builds the two namespaces
// and the delay line, starts a --mgmt receiver in namespace b (bound to b's address), runs
// the sender in namespace a with the given escp arguments, prints escp's own output and the
// delay line's counters, tears everything down, and exits with the sender's status.
//
// Usage: bun harness/wan/run.ts [--delay MS] [--rate MBIT] [--loss PCT] [--loss-back PCT]
//                               [--queue KIB] [--seed N] [--rtt] -- <escp args> SRC... HOST:DEST
// HOST is not resolved (the receiver is reached through the --mgmt socket); write e.g.
// wan:/tmp/dst. Defaults: --delay 25 (one way) --rate 1000 --loss 0 --queue 4096 --seed 1.
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { canWan, formatStats, startWan, type WanOptions } from "./netns.ts";
import type { RttResult } from "./rtt-probe.ts";
import { escpAcrossWan } from "./escp-wan.ts";

const USAGE = "usage: bun harness/wan/run.ts [--delay MS] [--rate MBIT] [--loss PCT] [--loss-back PCT] [--queue KIB] [--seed N] [--rtt] -- <escp args>";

function die(msg: string, code = 2): never {
  console.error(msg);
  process.exit(code);
}

function parse(argv: string[]): { wan: WanOptions; rtt: boolean; escp: string[] } {
  const sep = argv.indexOf("--");
  if (sep < 0 || sep === argv.length - 1) die(USAGE);
  const own = argv.slice(0, sep);
  const wan: WanOptions = { delayMs: 25, rateMbit: 1000, lossPct: 0, seed: 1 };
  let rtt = false;
  for (let i = 0; i < own.length; i++) {
    const flag = own[i] ?? "";
    if (flag === "--rtt") {
      rtt = true;
      continue;
    }
    const raw = own[++i];
    const v = Number(raw);
    if (raw === undefined || !Number.isFinite(v) || v < 0) die(`${flag} needs a non-negative number\n${USAGE}`);
    if (flag === "--delay") wan.delayMs = v;
    else if (flag === "--rate") wan.rateMbit = v;
    else if (flag === "--loss") wan.lossPct = v;
    else if (flag === "--loss-back") wan.lossBackPct = v;
    else if (flag === "--queue") wan.queueKib = v;
    else if (flag === "--seed") wan.seed = v;
    else die(`unknown option ${flag}\n${USAGE}`);
  }
  if (wan.lossPct > 100 || (wan.lossBackPct ?? 0) > 100) die("loss is a percentage (0..100)");
  return { wan, rtt, escp: argv.slice(sep + 1) };
}

async function main(): Promise<number> {
  const { wan: opts, rtt, escp } = parse(process.argv.slice(2));
  const can = canWan();
  if (!can.ok) die(`cannot emulate a WAN here: ${can.why}`, 77);
  const dir = makeTmpDir("wan-run");
  const wan = await startWan(opts);
  try {
    console.error(`[wan] ${wan.ns.a} ${wan.addr.a} <-> ${wan.ns.b} ${wan.addr.b}: ${wan.readyLine}`);
    if (rtt) {
      const r = await wan.exec("a", [process.execPath, join(import.meta.dir, "rtt-probe.ts"), wan.addr.b, "5"], { timeoutMs: 60_000 });
      const res = r.code === 0 ? (JSON.parse(r.stdout) as RttResult) : undefined;
      console.error(res ? `[wan] RTT min ${res.minMs.toFixed(1)} ms, median ${res.medianMs.toFixed(1)} ms` : `[wan] RTT probe failed: ${r.stderr.trim()}`);
    }
    const r = await escpAcrossWan(wan, escp, { sockDir: dir, timeoutMs: 3_600_000 });
    process.stdout.write(r.sender.stdout);
    process.stderr.write(r.sender.stderr);
    const rxText = r.receiverStderr.trim();
    if (r.receiverCode !== 0) console.error(`[wan] receiver exited ${r.receiverCode}${rxText ? `: ${rxText}` : ""}`);
    console.error(`[wan] delay line counters:\n${formatStats(await wan.stats())}`);
    return r.sender.code;
  } finally {
    await wan.stop();
    removeTmpDir(dir);
  }
}

process.exit(await main());
