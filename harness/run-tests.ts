// `bun run test`: builds and runs the C unit tests (`make -C native check`) and `bun test`,
// streams their output, and ends with exactly `P passed, F failed[, S skipped]`.
// A full run (no bun test args) ends with the release checks (harness/release/checks.ts).
// Usage: bun harness/run-tests.ts [--no-native] [--release-only] [bun test args, e.g. a path filter]
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { constants } from "node:os";
import { join, resolve } from "node:path";
import { releaseChecks, statusOf } from "./release/checks.ts";
import { makeTmpDir, removeTmpDir } from "./tmp-dir.ts";

const REPO = resolve(import.meta.dir, "..");
const NATIVE = join(REPO, "native");
const TEST_TIMEOUT_MS = 120_000;

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

/** Writes a chunk to our stdout in order (child stdout and stderr both go there, so the
 *  final summary line can never overtake them). */
let outQueue: Promise<void> = Promise.resolve();
function emit(chunk: Uint8Array | string): Promise<void> {
  outQueue = outQueue.then(() => new Promise<void>((res) => process.stdout.write(chunk, () => res())));
  return outQueue;
}

async function tee(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    sink.text += decoder.decode(chunk, { stream: true });
    await emit(chunk);
  }
}

/** Runs argv, streaming its output; returns the exit code (128+signal) and the output text. */
async function run(argv: string[], cwd = REPO): Promise<{ code: number; text: string }> {
  const proc = Bun.spawn(argv, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: process.env });
  const sink = { text: "" };
  await Promise.all([tee(proc.stdout, sink), tee(proc.stderr, sink), proc.exited]);
  const signal = proc.signalCode;
  return { code: signal ? 128 + (typeof signal === "number" ? signal : (constants.signals[signal] ?? 0)) : (proc.exitCode ?? 1), text: sink.text };
}

/** Test programs the Makefile builds (plain and ASan), relative to native/. */
function nativeTestPrograms(): string[] {
  const progs: string[] = [];
  for (const dir of ["build", "build/asan"]) {
    const abs = join(NATIVE, dir);
    if (!existsSync(abs)) continue;
    for (const name of readdirSync(abs).sort()) {
      if (/^test_[A-Za-z0-9_]+$/.test(name) && statSync(join(abs, name)).isFile()) progs.push(`${dir}/${name}`);
    }
  }
  return progs;
}

/** Each C test program is one test. `make check` stops at the first failing program, so the
 *  ones it did not reach are run here directly. */
async function runNative(t: Tally): Promise<void> {
  await emit("== make -C native\n");
  if ((await run(["make", "-C", NATIVE])).code !== 0) {
    t.failed++;
    t.failures.push("native: make -C native (build failed)");
    return;
  }
  await emit("== make -C native check\n");
  const check = await run(["make", "-C", NATIVE, "check"]);
  const ran = [...check.text.matchAll(/^== (\S+)$/gm)].map((m) => m[1] as string);
  if (check.code === 0) {
    t.passed += ran.length;
    return;
  }
  if (ran.length === 0) {
    t.failed++;
    t.failures.push("native: make check (test build failed)");
    return;
  }
  t.passed += ran.length - 1;
  t.failed++;
  t.failures.push(`native: ${ran[ran.length - 1]}`);
  for (const prog of nativeTestPrograms().filter((p) => !ran.includes(p))) {
    await emit(`== ${prog}\n`);
    if ((await run([`./${prog}`], NATIVE)).code === 0) t.passed++;
    else {
      t.failed++;
      t.failures.push(`native: ${prog}`);
    }
  }
}

/** The libFuzzer target for the frame decoder, run for a bounded time (one test; its
 *  `fuzz_frame: N execs in S s, 0 crashes` line records how many inputs were tried). */
async function runFuzz(t: Tally): Promise<void> {
  const seconds = process.env.ESCP_FUZZ_SECONDS ?? "20";
  await emit(`== make -C native fuzz-run FUZZ_SECONDS=${seconds}\n`);
  const r = await run(["make", "-s", "-C", NATIVE, "fuzz-run", `FUZZ_SECONDS=${seconds}`]);
  if (r.code === 0 && /fuzz_frame: \d+ execs/.test(r.text)) t.passed++;
  else {
    t.failed++;
    t.failures.push("native: fuzz_frame (crash or build failure; see build/fuzz.log)");
  }
}

/** `bun run regress --quick` (one test): the dataset catalog through local, sshd and WAN
 *  transfers, every byte verified; its report goes to a temp dir. */
async function runRegress(t: Tally): Promise<void> {
  const out = makeTmpDir("regress-report");
  await emit("== bun run regress --quick\n");
  const r = await run([process.execPath, join(REPO, "harness", "regress", "run.ts"), "--quick", "--out", out]);
  removeTmpDir(out);
  if (r.code === 0) t.passed++;
  else {
    t.failed++;
    t.failures.push("regress --quick (see the FAIL lines above)");
  }
}

/** Release checks (typecheck, lint, format, audit, generated files): one test each; a check
 *  that cannot run here (exit 77) is counted as skipped, never as passed. */
async function runRelease(t: Tally): Promise<void> {
  for (const c of releaseChecks(REPO)) {
    await emit(`== release: ${c.name}\n`);
    const tool = c.argv[0] as string;
    if (!existsSync(tool)) await emit(`release: ${tool} not found (npm ci installs it)\n`);
    const status = existsSync(tool) ? statusOf((await run(c.argv)).code) : "failed";
    if (status === "passed") t.passed++;
    else if (status === "skipped") {
      t.skipped++;
      await emit(`release: ${c.name} SKIPPED (reason above)\n`);
    } else {
      t.failed++;
      t.failures.push(`release: ${c.name} (see above; ${c.hint})`);
    }
  }
}

/** Last ` N pass|fail|skip|todo|error` counts from bun test's closing summary. */
function summaryCounts(text: string): Map<string, number> | undefined {
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  const at = plain.lastIndexOf("\nRan ");
  const found = new Map<string, number>();
  const tail = at >= 0 ? plain.slice(0, at) : plain;
  for (const m of tail.slice(-2000).matchAll(/^\s*(\d+) (pass|fail|skip|todo|errors?)\s*$/gm)) {
    found.set((m[2] as string).replace(/s$/, ""), Number(m[1]));
  }
  return found.has("pass") || found.has("fail") ? found : undefined;
}

/** Failed test names from the JUnit file (test files that failed to load are not in it). */
function junitFailures(xmlPath: string): { tests: number; failures: number; skipped: number; names: string[] } | undefined {
  if (!existsSync(xmlPath)) return undefined;
  const xml = readFileSync(xmlPath, "utf8");
  const top = /<testsuites\b[^>]*\btests="(\d+)"[^>]*\bfailures="(\d+)"[^>]*\bskipped="(\d+)"/.exec(xml);
  if (!top) return undefined;
  const names: string[] = [];
  for (const m of xml.matchAll(/<testcase name="([^"]*)"[^>]*file="([^"]*)"[^/>]*>\s*<(failure|error)\b/g)) {
    names.push(`${m[2]} > ${m[1]}`);
  }
  return { tests: Number(top[1]), failures: Number(top[2]), skipped: Number(top[3]), names };
}

async function runBunTests(t: Tally, passthrough: string[]): Promise<void> {
  const dir = makeTmpDir("junit");
  try {
    const xml = join(dir, "bun-test.xml");
    const argv = [process.execPath, "test", `--timeout=${TEST_TIMEOUT_MS}`, "--reporter=junit", `--reporter-outfile=${xml}`, ...passthrough];
    const { code, text } = await run(argv);
    const counts = summaryCounts(text);
    const junit = junitFailures(xml);
    let passed = counts?.get("pass") ?? (junit ? junit.tests - junit.failures - junit.skipped : 0);
    let failed = counts ? (counts.get("fail") ?? 0) || (counts.get("error") ?? 0) : (junit?.failures ?? 0);
    const skipped = counts ? (counts.get("skip") ?? 0) + (counts.get("todo") ?? 0) : (junit?.skipped ?? 0);
    t.failures.push(...(junit?.names ?? []).map((n) => `bun: ${n}`));
    const unnamed = failed - (junit?.names.length ?? 0);
    if (junit && unnamed > 0) t.failures.push(`bun: ${unnamed} more (e.g. a test file that failed to load; see above)`);
    if (code !== 0 && failed === 0) {
      failed = 1; // crashed, no test files matched, or an error outside any test
      t.failures.push(`bun test exited with status ${code} without a failing test`);
    }
    if (!counts && !junit) passed = 0;
    t.passed += passed;
    t.failed += failed;
    t.skipped += skipped;
  } finally {
    removeTmpDir(dir);
  }
}

async function main(argv: string[]): Promise<number> {
  const native = !argv.includes("--no-native");
  const releaseOnly = argv.includes("--release-only");
  const passthrough = argv.filter((a) => a !== "--no-native" && a !== "--release-only");
  const t: Tally = { passed: 0, failed: 0, skipped: 0, failures: [] };
  if (releaseOnly) {
    await runRelease(t);
    return summarize(t);
  }
  if (native) {
    await runNative(t);
    await runFuzz(t);
  }
  await runBunTests(t, passthrough);
  if (native && passthrough.length === 0) await runRegress(t);
  if (passthrough.length === 0) await runRelease(t);
  return summarize(t);
}

async function summarize(t: Tally): Promise<number> {
  if (t.failures.length > 0) await emit(`\nfailures:\n${t.failures.map((f) => `  ${f}`).join("\n")}\n`);
  await emit(`${t.passed} passed, ${t.failed} failed${t.skipped > 0 ? `, ${t.skipped} skipped` : ""}\n`);
  return t.failed > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
