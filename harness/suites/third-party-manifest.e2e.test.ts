// -3 with --manifest and --json on the multi-host fixture: host1 (the data source) reports each
// file's outcome to this host in FileReports as it is decided, with where host2 put it, so the
// manifest written here passes the real `b3sum -c` in host2's destination and lists exactly the
// files there, and the JSON lines (validated against docs/escp-json.schema.json) name every file,
// relayed and --direct. Also: a source failure among good files, and a manifest directory this
// host cannot write (refused before either server is started).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { escpJsonValidator, parseJsonLines } from "../json-schema.ts";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { expectSameTree, makeAwkwardTree, writeRandomFile } from "./e2e-helpers.ts";
import { expectExit, expectServersGone, freshDir, temporariesUnder, x3 } from "./third-party-helpers.ts";

const can = canMultiHost();
if (!can.ok) console.warn(`[third-party-manifest] skipping: ${can.why}`);

const T = 150_000;
/** Root without CAP_DAC_OVERRIDE: a 0555 directory is then really not writable. */
const NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"];
const validator = escpJsonValidator();
let fx: MultiHost | undefined;
let tmp = "";
let src = "";
let out = "";

function need(): MultiHost {
  if (!fx) throw new Error("fixture not started");
  return fx;
}

function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => statSync(join(dir, p)).isFile()).sort();
}

/** `cd dest && b3sum -c manifest` passes, checking exactly the files under dest; rel → digest. */
function expectManifestChecks(manifest: string, dest: string): Map<string, string> {
  const check = Bun.spawnSync(["b3sum", "-c", manifest], { cwd: dest, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const text = check.stdout.toString();
  if (check.exitCode !== 0) throw new Error(`b3sum -c ${manifest} in ${dest}: exit ${check.exitCode}\n${text}${check.stderr.toString()}`);
  const checked = text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (l.endsWith(": OK") ? l.slice(0, -4) : `NOT OK: ${l}`));
  expect(checked.sort()).toEqual(filesUnder(dest));
  const lines = readFileSync(manifest, "utf8")
    .split("\n")
    .filter((l) => l !== "");
  return new Map(lines.map((l) => [l.slice(66), l.slice(0, 64)]));
}

describe.skipIf(!can.ok)(can.ok ? "-3 with --manifest and --json" : `-3 with --manifest and --json (skipped: ${can.why})`, () => {
  beforeAll(async () => {
    tmp = makeTmpDir("third-party-manifest");
    src = join(tmp, "src");
    out = join(tmp, "out");
    mkdirSync(out);
    mkdirSync(src);
    await makeAwkwardTree(join(src, "tree"), 24, 41); // nesting, spaces, unicode, an empty file
    await writeRandomFile(join(src, "tree", "a b", "big one.bin"), 3 * 1024 * 1024 + 17, 42);
    await writeRandomFile(join(src, "one.bin"), 70_001, 43);
    fx = await startHosts({ count: 2 });
  }, 60_000);

  afterAll(async () => {
    try {
      await fx?.stop();
    } finally {
      fx = undefined;
      if (tmp) removeTmpDir(tmp);
    }
  }, 60_000);

  test(
    "-r tree, relayed and --direct: b3sum -c passes on host2's copy, every JSON line valid and naming each file",
    async () => {
      const f = need();
      const tree = join(src, "tree");
      const d = freshDir(out, "trees");
      const cases = [
        ["relay", []],
        ["direct", ["--direct"]],
      ] as const;
      const runs = await Promise.all(
        cases.map(([name, extra]) => x3(f, ["-3", ...extra, "-r", "--json", "--manifest", join(d, `${name}.b3`), `h1:${tree}`, `h2:${d}/${name}`])),
      );
      for (const [i, [name]] of cases.entries()) {
        const r = runs[i]!;
        expectExit(r, 0);
        const dest = join(d, name);
        await expectSameTree(tree, dest);
        const listed = expectManifestChecks(join(d, `${name}.b3`), dest);
        expect(listed.size).toBe(filesUnder(tree).length);
        expect(listed.has("a b/big one.bin")).toBe(true);
        const ev = parseJsonLines(r.stdout, validator);
        expect(ev[0]).toMatchObject({ type: "start", direction: "third-party", sources: [`h1:${tree}`], destination: `h2:${dest}` });
        const files = ev.filter((e) => e.type === "file");
        expect(files.every((e) => e.status === "ok" && String(e.path).startsWith(`h1:${tree}/`))).toBe(true);
        expect(new Map(files.map((e) => [e.rel as string, e.digest as string]))).toEqual(listed);
        expect(ev.at(-1)).toMatchObject({ type: "summary", files_ok: listed.size, files_failed: 0, exit_status: 0, error: null });
        expect(ev.some((e) => e.type === "error")).toBe(false);
      }
      expect(temporariesUnder(d)).toEqual([]);
      expect(readdirSync(d).filter((n) => n.startsWith("."))).toEqual([]); // the manifests' temporaries renamed
    },
    T,
  );

  test(
    "a missing source among good ones: a failed file event named for h1, the good file listed, exit 1",
    async () => {
      const f = need();
      const d = freshDir(out, "partial");
      const dest = freshDir(d, "dest");
      const manifest = join(d, "m.b3");
      const r = await x3(f, ["-3", "--json", "--manifest", manifest, `h1:${src}/missing.bin`, `h1:${src}/one.bin`, `h2:${dest}/`]);
      expectExit(r, 1);
      expect(expectManifestChecks(manifest, dest)).toEqual(new Map([["one.bin", expect.any(String)]]));
      const ev = parseJsonLines(r.stdout, validator);
      const failed = ev.filter((e) => e.type === "file" && e.status === "failed");
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ code: "E_SOURCE_MISSING" });
      expect(String(failed[0]?.message)).toMatch(/^h1:.*missing\.bin: /);
      expect(ev.find((e) => e.type === "error")).toMatchObject({ code: "E_SOURCE_MISSING", exit_status: 1 });
      expect(ev.at(-1)).toMatchObject({ type: "summary", files_ok: 1, files_failed: 1, exit_status: 1 });
      expect(r.stderr).toContain("missing.bin"); // the human line is on stderr
    },
    T,
  );

  test(
    "a manifest directory this host cannot write: refused before any server starts, nothing on host2",
    async () => {
      const f = need();
      const d = freshDir(out, "refused");
      const ro = freshDir(d, "ro");
      chmodSync(ro, 0o555);
      const dest = join(d, "dest");
      const manifest = join(ro, "m.b3");
      const r = await x3(f, ["-3", "-r", "--manifest", manifest, `h1:${src}/tree`, `h2:${dest}`], { wrap: NO_DAC });
      expectExit(r, 2);
      expect(r.stderr).toBe(`escp: --manifest ${manifest}: cannot write in ${ro}: Permission denied\n`);
      expect(existsSync(dest)).toBe(false);
      expect(readdirSync(ro)).toEqual([]);
      await expectServersGone(f);
    },
    T,
  );
});
