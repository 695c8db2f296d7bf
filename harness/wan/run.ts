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
import { parseCli, positiveNumber } from "../cli-args.ts";
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
  const num = { type: "string" } as const;
  const { values } = parseCli("wan", sep < 0 ? argv : argv.slice(0, sep), {
    usage: USAGE,
    options: { delay: num, rate: num, loss: num, "loss-back": num, queue: num, seed: num, rtt: { type: "boolean" } },
  });
  const n = (name: string, def: number): number => positiveNumber("wan", `--${name}`, values[name], def, true);
  const wan: WanOptions = { delayMs: n("delay", 25), rateMbit: n("rate", 1000), lossPct: n("loss", 0), seed: n("seed", 1) };
  if (values["loss-back"] !== undefined) wan.lossBackPct = n("loss-back", 0);
  if (values.queue !== undefined) wan.queueKib = n("queue", 0);
  const rtt = values.rtt === true;
  if (wan.lossPct > 100 || (wan.lossBackPct ?? 0) > 100) die("wan: loss is a percentage (0..100)");
  if (sep < 0 || sep === argv.length - 1) die("wan: needs -- and the escp arguments after its own options (see --help)");
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
