// --manifest FILE and --json on real transfers — local copy, push and pull through the loopback
// sshd: the real `b3sum -c FILE` run in the destination passes and lists exactly the files that
// arrived (nested directories, names with spaces and unicode, an empty file), every --json
// stdout line validates against docs/escp-json.schema.json and agrees with the manifest, and
// the refusals: a manifest directory escp cannot write (error before any data moves, nothing at
// the destination), --manifest with --nochecksum (E_USAGE), a missing source (error event with
// its stable code, the exit status in the summary). -3 is in third-party-manifest.e2e.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { escpJsonValidator, parseJsonLines } from "../json-schema.ts";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { BASE, expectSameTree, makeAwkwardTree, runEscp, writeRandomFile } from "./e2e-helpers.ts";
import type { RunEscpResult } from "../escp-run.ts";

const NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"];
const validator = escpJsonValidator();
let fx: SshdFixture;
const tmp = makeTmpDir("e2e-manifest-json");
const SRC = join(tmp, "src");

beforeAll(async () => {
  fx = await startSshd();
  mkdirSync(SRC);
  await makeAwkwardTree(SRC, 30, 11); // nesting, spaces, unicode, an empty file and an empty dir
  await writeRandomFile(join(SRC, "two words.bin"), 3 * 1024 * 1024 + 5, 12); // several blocks
}, 60_000);

afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

const remote = (): string[] => [...fx.sshArgs, "-D", ESCP_REMOTE_CMD];
const H = (path: string): string => `${fx.user}@${fx.host}:${path}`;

function expectExit(r: RunEscpResult, code: number): void {
  if (r.code !== code) throw new Error(`escp exited ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Regular files under dir, relative, sorted. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => statSync(join(dir, p)).isFile()).sort();
}

/** `cd dest && b3sum -c manifest` passes and checks exactly the files under dest. */
function expectManifestChecks(manifest: string, dest: string): Map<string, string> {
  const check = Bun.spawnSync(["b3sum", "-c", manifest], { cwd: dest, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const out = check.stdout.toString();
  if (check.exitCode !== 0) throw new Error(`b3sum -c ${manifest} in ${dest}: exit ${check.exitCode}\n${out}${check.stderr.toString()}`);
  expect(check.stderr.toString()).toBe("");
  const checked = out
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (l.endsWith(": OK") ? l.slice(0, -4) : `NOT OK: ${l}`));
  const files = filesUnder(dest);
  expect(checked.sort()).toEqual(files);
  expect(files.length).toBeGreaterThan(30);
  // rel → digest, for comparing with the JSON file events
  const lines = readFileSync(manifest, "utf8")
    .split("\n")
    .filter((l) => l !== "");
  return new Map(lines.map((l) => [l.slice(66), l.slice(0, 64)]));
}

/** Every stdout line valid; a start, one ok file event per manifest line (same rel and digest),
 *  a summary last that agrees. */
function expectJsonMatches(r: RunEscpResult, direction: string, listed: Map<string, string>): void {
  const ev = parseJsonLines(r.stdout, validator);
  expect(ev[0]?.type).toBe("start");
  expect(ev[0]?.direction).toBe(direction);
  const files = ev.filter((e) => e.type === "file");
  expect(files.every((e) => e.status === "ok")).toBe(true);
  expect(new Map(files.map((e) => [e.rel as string, e.digest as string]))).toEqual(listed);
  const last = ev.at(-1);
  expect(last).toMatchObject({ type: "summary", files_ok: listed.size, files_failed: 0, exit_status: 0, error: null });
  expect(ev.filter((e) => e.type === "summary")).toHaveLength(1);
  expect(ev.some((e) => e.type === "error")).toBe(false);
}

describe("--manifest and --json, every direction but -3", () => {
  test("local copy: b3sum -c passes in the destination, the JSON lines agree", async () => {
    const dest = join(tmp, "local-dst");
    const manifest = join(tmp, "local.b3");
    const r = await runEscp([...BASE, "-r", "--json", "--manifest", manifest, SRC, dest]);
    expectExit(r, 0);
    await expectSameTree(SRC, dest);
    expectJsonMatches(r, "local", expectManifestChecks(manifest, dest));
    expect(readdirSync(tmp).filter((n) => n.includes(".escp-"))).toEqual([]); // the temporary was renamed
  }, 120_000);

  test("push through sshd", async () => {
    const dest = join(tmp, "push-dst");
    const manifest = join(tmp, "push.b3");
    const r = await runEscp([...BASE, ...remote(), "-r", "--json", "--manifest", manifest, SRC, H(dest)]);
    expectExit(r, 0);
    await expectSameTree(SRC, dest);
    expectJsonMatches(r, "push", expectManifestChecks(manifest, dest));
  }, 120_000);

  test("pull through sshd, into an existing directory (names below it include the source's)", async () => {
    const dest = join(tmp, "pull-dst");
    mkdirSync(dest);
    const manifest = join(tmp, "pull.b3");
    const r = await runEscp([...BASE, ...remote(), "-r", "--json", "--manifest", manifest, H(SRC), dest]);
    expectExit(r, 0);
    await expectSameTree(SRC, join(dest, "src"));
    const listed = expectManifestChecks(manifest, dest);
    expect([...listed.keys()].every((rel) => rel.startsWith("src/"))).toBe(true);
    expect(listed.has("src/with space.txt")).toBe(true);
    expectJsonMatches(r, "pull", listed);
  }, 120_000);

  test("--json progress: a paced copy (-t 1 -l 1M, 3 MiB: seconds long by the rate limit) has progress events at most once a second", async () => {
    const r = await runEscp([...BASE, "--json", "-t", "1", "-l", "1M", join(SRC, "two words.bin"), join(tmp, "paced.bin")]);
    expectExit(r, 0);
    const ev = parseJsonLines(r.stdout, validator);
    const progress = ev.filter((e) => e.type === "progress");
    expect(progress.length).toBeGreaterThanOrEqual(1);
    for (const [i, p] of progress.entries()) {
      expect(p).toMatchObject({ total_bytes: 3 * 1024 * 1024 + 5, total_files: 1 });
      expect(p.bytes as number).toBeLessThanOrEqual(3 * 1024 * 1024 + 5);
      const prev = progress[i - 1];
      if (prev) {
        expect((p.elapsed as number) - (prev.elapsed as number)).toBeGreaterThanOrEqual(0.999); // by their own clock
        expect(p.bytes as number).toBeGreaterThanOrEqual(prev.bytes as number);
      }
    }
    expect(ev.map((e) => e.type).filter((t) => t !== "progress")).toEqual(["start", "file", "summary"]);
  }, 60_000);

  test("one file to a new name: listed under that name, b3sum -c passes in its directory", async () => {
    const dest = join(tmp, "single");
    mkdirSync(dest);
    const manifest = join(tmp, "single.b3");
    const r = await runEscp([...BASE, "--manifest", manifest, join(SRC, "two words.bin"), join(dest, "new name.bin")]);
    expectExit(r, 0);
    expect(r.stdout).toBe("");
    const check = Bun.spawnSync(["b3sum", "-c", manifest], { cwd: dest, stdout: "pipe", stderr: "pipe" });
    expect([check.exitCode, check.stdout.toString()]).toEqual([0, "new name.bin: OK\n"]);
  }, 60_000);
});

describe("refusals", () => {
  test("a manifest directory escp cannot write: one error line naming the file and why, before any data moves", async () => {
    const ro = join(tmp, "ro");
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    for (const [name, args] of [
      ["local", []],
      ["push", remote()],
    ] as const) {
      const dest = join(tmp, `ro-${name}-dst`);
      const manifest = join(ro, "m.b3");
      const target = name === "local" ? dest : H(dest);
      const r = await runEscp([...BASE, ...args, "-r", "--manifest", manifest, SRC, target], { wrap: NO_DAC });
      expectExit(r, 2);
      expect(r.stderr).toBe(`escp: --manifest ${manifest}: cannot write in ${ro}: Permission denied\n`);
      expect(existsSync(dest)).toBe(false);
      expect(readdirSync(ro)).toEqual([]);
    }
    const dest = join(tmp, "ro-pull-dst");
    mkdirSync(dest);
    const missingDir = join(tmp, "no such dir", "m.b3");
    const r = await runEscp([...BASE, ...remote(), "-r", "--json", "--manifest", missingDir, H(SRC), dest]);
    expectExit(r, 2);
    expect(r.stderr).toContain(`--manifest ${missingDir}: cannot write in ${join(tmp, "no such dir")}`);
    expect(readdirSync(dest)).toEqual([]);
    const ev = parseJsonLines(r.stdout, validator);
    expect(ev.map((e) => e.type)).toEqual(["error", "summary"]); // no start: nothing moved
    expect(ev[0]).toMatchObject({ code: "E_USAGE", exit_status: 2 });
  }, 120_000);

  test("--manifest with --nochecksum is E_USAGE, one line, nothing copied", async () => {
    const dest = join(tmp, "nock-dst");
    const r = await runEscp([...BASE, "-r", "--nochecksum", "--manifest", join(tmp, "nock.b3"), SRC, dest]);
    expectExit(r, 2);
    expect(r.stderr.split("\n").filter((l) => l !== "")).toHaveLength(1);
    expect(r.stderr).toMatch(/^escp: --manifest .*nock\.b3: not with --nochecksum/);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(join(tmp, "nock.b3"))).toBe(false);
  });

  test("--json: a missing source (local and pulled) ends with an error event of its stable code and the exit status", async () => {
    const missing = join(tmp, "not-there");
    const local = await runEscp([...BASE, "--json", missing, join(tmp, "miss-dst")]);
    const into = join(tmp, "miss-dst2"); // existing: a pull into a new name with no source is E_DEST first
    mkdirSync(into);
    const pulled = await runEscp([...BASE, ...remote(), "--json", H(missing), into]);
    for (const r of [local, pulled]) {
      expect(r.code).not.toBe(0);
      const ev = parseJsonLines(r.stdout, validator);
      const err = ev.find((e) => e.type === "error");
      expect(err).toMatchObject({ code: "E_SOURCE_MISSING", exit_status: r.code });
      expect(String(err?.message)).toContain("not-there");
      expect(ev.at(-1)).toMatchObject({ type: "summary", exit_status: r.code, files_ok: 0, error: { code: "E_SOURCE_MISSING" } });
      expect(ev.filter((e) => e.type === "file" && e.status === "failed").length).toBeGreaterThanOrEqual(1);
    }
    expect(local.code).toBe(1);
  }, 60_000);

  test("--json with a bad flag: an E_USAGE error event and the summary, exit 2", async () => {
    const r = await runEscp(["--json", "--no-such-flag", "a", "b"]);
    expectExit(r, 2);
    const ev = parseJsonLines(r.stdout, validator);
    expect(ev.map((e) => [e.type, e.exit_status])).toEqual([
      ["error", 2],
      ["summary", 2],
    ]);
  });

  test("--json: a file that fails among others is a failed file event, the rest are listed", async () => {
    const src = join(tmp, "partial-src");
    mkdirSync(src);
    writeFileSync(join(src, "ok.txt"), "fine\n");
    writeFileSync(join(src, "locked.txt"), "secret\n");
    chmodSync(join(src, "locked.txt"), 0o000);
    const dest = join(tmp, "partial-dst");
    const manifest = join(tmp, "partial.b3");
    const r = await runEscp([...BASE, "-r", "--json", "--manifest", manifest, src, dest], { wrap: NO_DAC });
    expectExit(r, 1);
    const ev = parseJsonLines(r.stdout, validator);
    const failed = ev.filter((e) => e.type === "file" && e.status === "failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ code: "E_SOURCE_UNREADABLE" });
    expect(ev.find((e) => e.type === "error")).toMatchObject({ code: "E_SOURCE_UNREADABLE", exit_status: 1 });
    expect(ev.at(-1)).toMatchObject({ type: "summary", files_ok: 1, files_failed: 1, exit_status: 1 });
    expect(readFileSync(manifest, "utf8")).toMatch(/^[0-9a-f]{64} {2}ok\.txt\n$/); // what verified is listed
  }, 60_000);
});
