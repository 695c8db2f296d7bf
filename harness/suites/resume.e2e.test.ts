// Resume (issue 12) through the real CLI: a receiver stopped part way (SIGTERM, which seals the
// partial, or SIGKILL anywhere, which leaves a journal to re-check) and the same command run
// again continues where it stopped, neither reading nor sending the held blocks, and ends with
// the file equal to its source by b3sum. The ways it must not continue are checked too: a
// changed source (mtime, or content under a restored mtime), a partial that was truncated or
// written to, a torn or foreign journal, --no-resume, another block size, and a second escp
// on the same target (E_BUSY, partial untouched). Local copies (the receiver is a local
// child), and push and pull through a --mgmt server the test owns.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { runPair } from "../faults/pair.ts";
import { parseJsonLines } from "../json-schema.ts";
import { BASE, b3sum, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-resume");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const B = 64 * 1024;
const SIZE = 8 * 1024 * 1024 + 777; // 129 blocks of 64 KiB
const ARGS = [...BASE, "--blocksize", "64K", "-t", "2"];
/** First runs that must stop part way: 8 MiB/s per stream (the kill hook acts on the
 * receiver's loop, which must see the count pass before the file is complete). */
const PACE = ["-l", "8M"];
let n = 0;

/** A fresh source file and an empty destination directory. */
async function setup(size = SIZE): Promise<{ src: string; dst: string; log: string; target: string }> {
  const dir = join(tmp, `case${++n}`);
  const src = join(dir, "src", "data.bin");
  const dst = join(dir, "dst");
  await writeRandomFile(src, size, 1000 + n);
  Bun.spawnSync(["mkdir", "-p", dst]);
  return { src, dst, log: join(dir, "log"), target: join(dst, "data.bin") };
}

const part = (dst: string, leaf = "data.bin"): string => join(dst, `.${leaf}.escp-part`);
const journal = (dst: string, leaf = "data.bin"): string => join(dst, `.${leaf}.escp-journal`);

/** The resumed bytes the initiator's last "session done" record names (--logfile). */
function resumedOf(log: string): number {
  const lines = readFileSync(`${log}.client`, "utf8").trim().split("\n");
  for (const line of lines.reverse()) {
    const rec = JSON.parse(line) as { msg: string; fields?: { resumed?: number } };
    if (rec.msg === "session done") return rec.fields?.resumed ?? -1;
  }
  throw new Error(`no "session done" record in ${log}.client`);
}

/** The first run: the receiver stops after `at` bytes (SIGTERM: sealed; SIGKILL: as is). */
async function interrupted(
  src: string,
  dst: string,
  at: number,
  signal: "TERM" | "KILL",
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<void> {
  const kill = `receiver:${at}${signal === "TERM" ? ":TERM" : ""}`;
  // Paced, so the receiver's loop sees the byte count pass `at` before the file completes.
  const r = await runEscp([...ARGS, ...PACE, ...extra, src, `${dst}/`], { env: { ESCP_FAULT_KILL_BYTES: kill, ...env } });
  expect(r.code).not.toBe(0);
  expect(existsSync(join(dst, "data.bin"))).toBe(false); // nothing unverified under the final name
  expect(existsSync(part(dst))).toBe(true);
  expect(existsSync(journal(dst))).toBe(true);
}

/** The rerun: exit 0, the target equals the source, nothing of escp's left. Returns the
 * resumed bytes and stderr. */
async function rerun(src: string, dst: string, log: string, extra: string[] = []): Promise<{ resumed: number; stderr: string }> {
  const r = await runEscp([...ARGS, ...extra, "--logfile", log, src, `${dst}/`]);
  expect(r.stderr).not.toContain("error");
  expect(r.code).toBe(0);
  expect(await b3sum(join(dst, "data.bin"))).toBe(await b3sum(src));
  expect(readdirSync(dst).filter((x) => x.includes("escp"))).toEqual([]);
  const resumed = resumedOf(log);
  expect(resumed % B).toBe(0); // whole blocks
  expect(resumed).toBeLessThanOrEqual(SIZE - (SIZE % B)); // never the last block
  return { resumed, stderr: r.stderr };
}

describe("resume, local copy", () => {
  test("SIGTERM part way: the partial is sealed and the rerun sends only the rest", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 3 * 1024 * 1024, "TERM");
    const held = statSync(part(dst)).size;
    expect(held).toBe(SIZE); // sized up front
    const { resumed, stderr } = await rerun(src, dst, log);
    expect(resumed).toBeGreaterThanOrEqual(3 * 1024 * 1024 - 2 * B); // what was written before the signal
    expect(stderr).toBe("");
  });

  // Kill-anywhere property: SIGKILL the receiver or the sender once it has moved a seeded
  // random number of bytes, with the journal committed every block, then rerun. Always: the
  // rerun ends b3sum-equal with nothing of escp's left and nothing under the final name
  // before; held bytes are whole blocks, never the last one, and (receiver killed) re-sent
  // bytes stay within the unjournaled window: the
  // blocks written but not yet committed (4 groups of 1 block pending, 1 being committed)
  // plus the blocks in flight on the T = 2 streams on each side of the write.
  // ESCP_SEED reproduces a run; ESCP_RESUME_KILLS sets the count (24 here; more for a long run).
  const SEED = Number(process.env.ESCP_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const KILLS = Number(process.env.ESCP_RESUME_KILLS ?? 24);
  test(`SIGKILL anywhere, either side (${KILLS} seeded points; seed ${SEED}): the rerun is always right`, async () => {
    console.log(`resume kill-anywhere: seed ${SEED} (replay: ESCP_SEED=${SEED} bun test harness/suites/resume.e2e.test.ts -t anywhere)`);
    const { src, dst, log } = await setup();
    const digest = await b3sum(src);
    const WINDOW = (4 + 1 + 2 * 2 + 1) * B;
    let seed = SEED;
    for (let i = 0; i < KILLS; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const side = seed % 2 === 0 ? "receiver" : "sender";
      const at = 1 + (Math.floor(seed / 2) % (SIZE - 1));
      const r = await runEscp([...ARGS, src, `${dst}/`], { env: { ESCP_FAULT_KILL_BYTES: `${side}:${at}`, ESCP_JOURNAL_BYTES: String(B) } });
      const what = `kill #${i}: ${side} at ${at} bytes (seed ${SEED})`;
      if (existsSync(join(dst, "data.bin"))) {
        // killed after the receiver verified and named it
        expect(await b3sum(join(dst, "data.bin")), what).toBe(digest);
      } else {
        expect(r.code, what).not.toBe(0);
        const { resumed } = await rerun(src, dst, log);
        if (side === "receiver") expect(SIZE - resumed, what).toBeLessThanOrEqual(SIZE - Math.floor(at / B) * B + WINDOW);
      }
      rmSync(join(dst, "data.bin"), { force: true });
    }
  });

  test("--json and --manifest on a resumed run: resumed_bytes in the file and summary events, the manifest passes b3sum -c", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 3 * 1024 * 1024, "TERM");
    const manifest = join(dst, "..", "MANIFEST");
    const r = await runEscp([...ARGS, "--json", "--manifest", manifest, "--logfile", log, src, `${dst}/`]);
    expect(r.code).toBe(0);
    const events = parseJsonLines(r.stdout); // every line validated against docs/escp-json.schema.json
    const file = events.find((e) => e.type === "file");
    const summary = events.find((e) => e.type === "summary");
    expect(file?.resumed_bytes).toBe(resumedOf(log));
    expect(Number(file?.resumed_bytes)).toBeGreaterThan(0);
    expect(summary?.resumed_bytes).toBe(file?.resumed_bytes);
    expect(file?.digest).toBe(await b3sum(src));
    const check = Bun.spawnSync(["b3sum", "-c", manifest], { cwd: dst });
    expect(check.stdout.toString()).toBe("data.bin: OK\n");
    expect(check.exitCode).toBe(0);
  });

  test("a source modified since (newer mtime): one notice, all of it sent again", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 2 * 1024 * 1024, "TERM");
    const t = new Date(Date.now() + 5000);
    utimesSync(src, t, t);
    const { resumed, stderr } = await rerun(src, dst, log);
    expect(resumed).toBe(0);
    expect(stderr).toContain("earlier partial not resumed: it was written from another version of the source");
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  test("content changed under a restored mtime: the first held run no longer matches, all of it is sent", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 2 * 1024 * 1024, "TERM");
    const ref = `${src}.times`; // touch -r keeps the nanoseconds (a JS Date would not)
    expect(Bun.spawnSync(["touch", "-r", src, ref]).exitCode).toBe(0);
    const fd = openSync(src, "r+");
    writeSync(fd, Buffer.from("changed"), 0, 7, 100);
    closeSync(fd);
    expect(Bun.spawnSync(["touch", "-r", ref, src]).exitCode).toBe(0);
    const { resumed, stderr } = await rerun(src, dst, log);
    expect(resumed).toBe(0);
    expect(stderr).toContain("not resumed: the source changed since the receiver's partial was written");
  });

  test("a partial written to since: re-checked block by block, the damaged run sent again", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 4 * 1024 * 1024, "TERM");
    const fd = openSync(part(dst), "r+");
    writeSync(fd, Buffer.from("scribble"), 0, 8, B + 5); // inside block 1
    closeSync(fd);
    const { resumed } = await rerun(src, dst, log); // equal to the source: block 1 was sent again
    expect(resumed).toBeGreaterThan(0); // the other held blocks still count
  });

  test("a truncated partial: a notice and a full resend", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 2 * 1024 * 1024, "TERM");
    truncateSync(part(dst), 1000);
    const { resumed, stderr } = await rerun(src, dst, log);
    expect(resumed).toBe(0);
    expect(stderr).toContain("earlier partial not resumed: it was truncated");
  });

  test("a torn journal (cut mid-record): the records before the tear still count", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 4 * 1024 * 1024, "TERM");
    const len = statSync(journal(dst)).size;
    truncateSync(journal(dst), len - 48 - 20); // the seal and part of the record before it
    const { resumed } = await rerun(src, dst, log);
    expect(resumed).toBeGreaterThan(0);
  });

  test("a foreign journal: a notice, a full resend, and no harm", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 2 * 1024 * 1024, "TERM");
    const fd = openSync(journal(dst), "r+");
    writeSync(fd, Buffer.from("NOTAJRNL"), 0, 8, 0);
    closeSync(fd);
    const { resumed, stderr } = await rerun(src, dst, log);
    expect(resumed).toBe(0);
    expect(stderr).toContain("earlier partial not resumed: its journal is not an escp journal or is damaged");
  });

  test("--no-resume starts over and removes the earlier partial", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 2 * 1024 * 1024, "TERM");
    const { resumed, stderr } = await rerun(src, dst, log, ["--no-resume"]);
    expect(resumed).toBe(0);
    expect(stderr).toBe("");
  });

  test("another block size on the rerun: the held blocks are converted, the result is the same", async () => {
    const { src, dst, log } = await setup();
    await interrupted(src, dst, 3 * 1024 * 1024, "TERM");
    const r = await runEscp([...BASE, "--blocksize", "128K", "-t", "2", "--logfile", log, src, `${dst}/`]);
    expect(r.code).toBe(0);
    expect(await b3sum(join(dst, "data.bin"))).toBe(await b3sum(src));
    const resumed = resumedOf(log);
    expect(resumed).toBeGreaterThan(0);
    expect(resumed % (128 * 1024)).toBe(0);
    expect(readdirSync(dst).filter((x) => x.includes("escp"))).toEqual([]);
  });

  test("a second escp on the same target is refused (E_BUSY) and the partial is left alone", async () => {
    const { src, dst } = await setup();
    await interrupted(src, dst, 2 * 1024 * 1024, "TERM");
    const before = [readFileSync(part(dst)), readFileSync(journal(dst))];
    // Another process holds the partial's lock (as a running escp does) until its stdin closes.
    const holder = Bun.spawn(["flock", "-x", part(dst), "-c", "echo locked; cat >/dev/null"], { stdin: "pipe", stdout: "pipe" });
    const reader = holder.stdout.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("locked");
    try {
      const r = await runEscp([...ARGS, src, `${dst}/`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("another escp is writing it");
    } finally {
      holder.stdin.end();
      await holder.exited;
    }
    expect(existsSync(join(dst, "data.bin"))).toBe(false);
    expect(readFileSync(part(dst)).equals(before[0] ?? Buffer.alloc(0))).toBe(true);
    expect(readFileSync(journal(dst)).equals(before[1] ?? Buffer.alloc(0))).toBe(true);
  });

  test("files of one block or none never get a partial; a tree resumes file by file", async () => {
    const dir = join(tmp, "tree");
    const src = join(dir, "src");
    const dst = join(dir, "dst");
    const sizes: Record<string, number> = { empty: 0, one: 1, block: B, two: B + 1, big: 3 * 1024 * 1024 + 5 };
    for (const [name, size] of Object.entries(sizes)) await writeRandomFile(join(src, name), size, size + 7);
    Bun.spawnSync(["mkdir", "-p", dst]);
    const r1 = await runEscp([...ARGS, "-l", "2M", "-r", src, `${dst}/`], { env: { ESCP_FAULT_KILL_BYTES: `receiver:${2 * 1024 * 1024}:TERM` } });
    expect(r1.code).not.toBe(0);
    const left = readdirSync(join(dst, "src")).filter((x) => x.includes("escp"));
    for (const x of left) expect(x).toMatch(/^\.(two|big)\.escp-(part|journal)$/); // multi-block files only
    expect(left).toContain(".big.escp-part");
    const r2 = await runEscp([...ARGS, "-r", src, `${dst}/`]);
    expect(r2.code).toBe(0);
    for (const name of Object.keys(sizes)) expect(await b3sum(join(dst, "src", name))).toBe(await b3sum(join(src, name)));
    expect(readdirSync(join(dst, "src")).filter((x) => x.includes("escp"))).toEqual([]);
  });
});

describe("resume, more shapes", () => {
  test("a sparse source with --sparse: resumed, equal, and still sparse at the destination", async () => {
    const dir = join(tmp, "sparse");
    const src = join(dir, "src", "data.bin");
    const dst = join(dir, "dst");
    Bun.spawnSync(["mkdir", "-p", join(dir, "src"), dst]);
    // 16 MiB: data islands at 0, 5 MiB, 8–12 MiB and the last 100 KiB; the rest holes (read
    // as zeros). Holes travel as tiny ZERO frames the -l pacing hardly slows, so the 4 MiB
    // island after the kill point keeps the first run busy until the receiver's TERM lands
    // (without it a fast run could finish first, leaving no partial).
    const fd = openSync(src, "w");
    for (const [at, len] of [
      [0, 300_000],
      [5 * 1024 * 1024 + 17, 200_000],
      [8 * 1024 * 1024, 4 * 1024 * 1024],
      [16 * 1024 * 1024 - 100_000, 100_000],
    ] as const) {
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i++) buf[i] = (i * 31 + at) & 0xff;
      writeSync(fd, buf, 0, len, at);
    }
    closeSync(fd);
    const log = join(dir, "log");
    const size = statSync(src).size;
    const r1 = await runEscp([...ARGS, ...PACE, "--sparse", src, `${dst}/`], { env: { ESCP_FAULT_KILL_BYTES: `receiver:${7 * 1024 * 1024}:TERM` } });
    expect(r1.code).not.toBe(0);
    expect(existsSync(part(dst))).toBe(true);
    const r2 = await runEscp([...ARGS, "--sparse", "--logfile", log, src, `${dst}/`]);
    expect(r2.code).toBe(0);
    expect(await b3sum(join(dst, "data.bin"))).toBe(await b3sum(src));
    expect(resumedOf(log)).toBeGreaterThan(0);
    expect(statSync(join(dst, "data.bin")).blocks * 512).toBeLessThan(size / 2); // holes kept
  });

  test("two runs on one target at once: the second is refused (E_BUSY), the first completes", async () => {
    const { src, dst } = await setup();
    const { watch } = await import("node:fs");
    // The first run is paced so it is still writing when the second starts; the second starts
    // as soon as the first's partial appears (a filesystem event, not a timer).
    const appeared = new Promise<void>((resolve) => {
      const w = watch(dst, (_e, name) => {
        if (name === ".data.bin.escp-part") {
          w.close();
          resolve();
        }
      });
    });
    const first = runEscp([...ARGS, "-l", "2M", src, `${dst}/`]);
    await appeared;
    const second = await runEscp([...ARGS, src, `${dst}/`]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("another escp is writing it");
    const r = await first;
    expect(r.code).toBe(0);
    expect(await b3sum(join(dst, "data.bin"))).toBe(await b3sum(src));
    expect(readdirSync(dst).filter((x) => x.includes("escp"))).toEqual([]);
  });
});

describe("resume, push and pull through a --mgmt server", () => {
  for (const direction of ["push", "pull"] as const) {
    test(`${direction}: the receiver stopped part way, the rerun resumes`, async () => {
      const { src, dst, log } = await setup();
      const sock = join(tmp, `${direction}.sock`);
      const args = (extra: string[]): string[] => [
        ...ARGS,
        ...extra,
        direction === "push" ? src : `localhost:${src}`,
        direction === "push" ? `localhost:${dst}/` : `${dst}/`,
      ];
      const env = { ESCP_FAULT_KILL_BYTES: `receiver:${3 * 1024 * 1024}:TERM` };
      const first = await runPair({ sock, cwd: tmp, args: args(PACE), senderEnv: env, receiverEnv: env });
      expect(first.senderCode === 0 && first.receiverCode === 0).toBe(false);
      expect(existsSync(join(dst, "data.bin"))).toBe(false);
      expect(existsSync(part(dst))).toBe(true);
      rmSync(sock, { force: true });
      const second = await runPair({ sock, cwd: tmp, args: args(["--logfile", log]) });
      expect(second.senderStderr).toBe("");
      expect(second.senderCode).toBe(0);
      expect(await b3sum(join(dst, "data.bin"))).toBe(await b3sum(src));
      expect(readdirSync(dst).filter((x) => x.includes("escp"))).toEqual([]);
      expect(resumedOf(log)).toBeGreaterThanOrEqual(3 * 1024 * 1024 - 2 * B);
    });
  }
});
