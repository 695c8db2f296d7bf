// `bun run regress [--quick|--full] [--out DIR] [--only SUBSTR]`: materialises each catalog
// dataset once, transfers it through every transport × config with real escp runs, verifies
// every byte independently, and writes a JSON report plus a markdown summary.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseCli } from "../cli-args.ts";
import { makeTmpDir } from "../tmp-dir.ts";
import { REPO_ROOT } from "../escp-run.ts";
import { FULL, QUICK, type ConfigCase, type DatasetCase, type Matrix, type Transport } from "./matrix.ts";
import { openTransport, type TransportHandle } from "./transports.ts";
import { sourceTotals, verifyCopy } from "./verify.ts";
import { markdownReport, type CaseResult } from "./report.ts";

const { values: args } = parseCli("regress", process.argv.slice(2), {
  usage: "usage: bun run regress [--quick|--full] [--out DIR] [--only SUBSTR]",
  options: {
    quick: { type: "boolean", help: "the CI matrix (default)" },
    full: { type: "boolean", help: "every dataset × transport × config, plus the seeded property runs" },
    out: { type: "string", help: "report directory (default bench/results)" },
    only: { type: "string", help: "only the datasets whose label contains SUBSTR" },
  },
});
const matrix: Matrix = args.full ? FULL : QUICK;
const mode = args.full ? "full" : "quick";
const outDir = (args.out as string | undefined) ?? join(REPO_ROOT, "bench", "results");
const only = args.only as string | undefined;

async function makeDataset(d: DatasetCase, dir: string): Promise<string> {
  const target = join(dir, `ds-${d.name}`);
  const p = Bun.spawn([process.execPath, join(REPO_ROOT, "datasets", "cli.ts"), "make", d.name, target, "-q", ...d.params], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const err = await new Response(p.stderr).text();
  if ((await p.exited) !== 0) throw new Error(`datasets make ${d.name} failed: ${err.trim()}`);
  return target;
}

async function runCase(t: TransportHandle, d: DatasetCase, src: string, c: ConfigCase, work: string, n: number): Promise<CaseResult> {
  const dst = join(work, `out-${n}`);
  mkdirSync(dst);
  const t0 = performance.now();
  const r = await t.run([...c.flags, "-r", src], dst);
  const seconds = (performance.now() - t0) / 1000;
  const diffs = await verifyCopy(src, join(dst, `ds-${d.name}`));
  const expectExit = d.name === "edge" ? 1 : 0; // edge holds a FIFO (named and skipped: 1) and a dangling link (a notice)
  const ok = diffs.length === 0 && r.code === expectExit;
  rmSync(dst, { recursive: true, force: true });
  return {
    dataset: d.label,
    transport: t.name,
    config: c.label,
    exitCode: r.code,
    expectedExit: expectExit,
    seconds,
    ...sourceTotals(src),
    ok,
    problems: [...diffs.slice(0, 5), ...(r.code === expectExit ? [] : [r.stderr.trim().split("\n").slice(-2).join(" | ")])],
  };
}

/** --full: a seeded property test of the suites (resume kill-anywhere, reconnect
 * cut-anywhere, archive trees) with many more seeded cases than CI runs, as one row of the
 * report; `only` names the test (a -t filter). */
async function seededProperty(label: string, suite: string, countVar: string, count: number, only: string): Promise<CaseResult> {
  const seed = Math.floor(Math.random() * 2 ** 31);
  const t0 = performance.now();
  const p = Bun.spawn([process.execPath, "test", "--timeout", String(count * 20_000), join(REPO_ROOT, "harness", "suites", suite), "-t", only], {
    cwd: REPO_ROOT,
    env: { ...process.env, ESCP_SEED: String(seed), [countVar]: String(count) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const ok = code === 0 && /\b1 pass\b/.test(out + err);
  return {
    dataset: `${label} (${count})`,
    transport: "local",
    config: `ESCP_SEED=${seed}`,
    exitCode: code,
    expectedExit: 0,
    seconds: (performance.now() - t0) / 1000,
    bytes: 0,
    files: count,
    ok,
    problems: ok
      ? []
      : (out + err)
          .split("\n")
          .filter((l) => /error|fail|kill #|cut #/.test(l))
          .slice(0, 5),
  };
}

async function main(): Promise<number> {
  const work = makeTmpDir("regress");
  const results: CaseResult[] = [];
  const skipped: string[] = [];
  const transports: TransportHandle[] = [];
  try {
    for (const name of matrix.transports as Transport[]) {
      const t = await openTransport(name, work);
      if (typeof t === "string") skipped.push(`${name}: ${t}`);
      else transports.push(t);
    }
    let n = 0;
    for (const d of matrix.datasets) {
      if (only && !d.label.includes(only)) continue;
      const src = await makeDataset(d, work);
      for (const t of transports) {
        for (const c of matrix.configs) {
          const r = await runCase(t, d, src, c, work, n++);
          results.push(r);
          console.log(
            `${r.ok ? "ok  " : "FAIL"} ${r.dataset} · ${r.transport} · ${r.config}: ${r.seconds.toFixed(2)} s${r.ok ? "" : ` — ${r.problems.join("; ")}`}`,
          );
        }
      }
      rmSync(src, { recursive: true, force: true });
    }
    const properties = [
      ["resume", "resume kill-anywhere kills", "resume.e2e.test.ts", "ESCP_RESUME_KILLS", 200, "anywhere"],
      ["reconnect", "reconnect cut-anywhere cuts", "netproxy.fault.test.ts", "ESCP_RECONNECT_CUTS", 100, "anywhere"],
      ["archive", "-a generated trees", "archive.e2e.test.ts", "ESCP_ARCHIVE_TREES", 60, "generated trees"],
    ] as const;
    for (const [name, label, suite, countVar, count, test] of properties) {
      if (mode !== "full" || (only && !name.includes(only))) continue;
      const r = await seededProperty(label, suite, countVar, count, test);
      results.push(r);
      console.log(`${r.ok ? "ok  " : "FAIL"} ${r.dataset} · ${r.config}: ${r.seconds.toFixed(2)} s${r.ok ? "" : ` — ${r.problems.join("; ")}`}`);
    }
  } finally {
    for (const t of transports) await t.close();
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const base = join(outDir, `regress-${mode}-${stamp}`);
  writeFileSync(`${base}.json`, JSON.stringify({ mode, date: new Date().toISOString(), skipped, results }, null, 2));
  writeFileSync(`${base}.md`, markdownReport(mode, results, skipped));
  const failed = results.filter((r) => !r.ok).length;
  for (const s of skipped) console.log(`skipped transport ${s}`);
  console.log(`regress ${mode}: ${results.length - failed} passed, ${failed} failed (report ${base}.md)`);
  return failed === 0 && results.length > 0 ? 0 : 1;
}

process.exit(await main());
