// The many-file scenarios (files-100k, files-1m; issue 13) without running a transfer: what
// the command line selects, the matrix they build (dataset, cases, repeats, smoke sizes,
// --files), and that the report shows their files/s and both sides' peak RSS.
import { describe, expect, test } from "bun:test";
import { catalogEntry } from "../../datasets/catalog.ts";
import { datasetTotals } from "../../datasets/spec.ts";
import { keyFigures } from "../lib/figures.ts";
import { type CaseResult, type MacroResults, primaryMetric, SCHEMA } from "../lib/results.ts";
import { markdown } from "../report.ts";
import { DEFAULT_SCENARIOS, parseOptions, SCENARIOS, UsageError } from "./options.ts";
import { buildMatrix, labelOf, MANY_FILES_PER_DIR, type ScenarioSpec } from "./scenarios.ts";

const scenario = (argv: string[], name: string): ScenarioSpec => {
  const s = buildMatrix(parseOptions(argv)).find((x) => x.name === name);
  if (!s) throw new Error(`${name} not in the matrix`);
  return s;
};

describe("files-100k / files-1m options", () => {
  test("both are scenarios; files-1m only runs when named (or with all)", () => {
    expect(SCENARIOS).toEqual(expect.arrayContaining(["files-100k", "files-1m"]));
    expect(parseOptions([]).scenarios).toEqual(DEFAULT_SCENARIOS);
    expect(DEFAULT_SCENARIOS).toContain("files-100k");
    expect(DEFAULT_SCENARIOS).not.toContain("files-1m");
    expect(parseOptions(["--scenario", "all"]).scenarios).toContain("files-1m");
    expect(parseOptions(["--scenario", "files-1m"]).scenarios).toEqual(["files-1m"]);
    expect(parseOptions(["--smoke"]).scenarios).not.toContain("files-1m");
  });

  test("--files N: a whole number 1..10,000,000", () => {
    expect(parseOptions(["--files", "5000"]).files).toBe(5000);
    expect(parseOptions(["--files=250"]).files).toBe(250);
    for (const bad of ["0", "1.5", "lots", "20000000"]) expect(() => parseOptions(["--files", bad])).toThrow(UsageError);
  });
});

describe("files-100k / files-1m matrix", () => {
  test("full sizes: small-mixed of 100,000 and 1,000,000 files in dirs of 1,000; repeats 2 and 1", () => {
    const k = scenario(["--scenario", "all"], "files-100k");
    const m = scenario(["--scenario", "all"], "files-1m");
    expect(k.dataset).toEqual({ name: "small-mixed", params: { files: 100_000, perdir: MANY_FILES_PER_DIR.full, seed: 1 } });
    expect(m.dataset).toEqual({ name: "small-mixed", params: { files: 1_000_000, perdir: MANY_FILES_PER_DIR.full, seed: 1 } });
    expect(MANY_FILES_PER_DIR.full).toBe(1000);
    expect([k.repeats, m.repeats]).toEqual([2, 1]);
    expect(k.transport).toBe("loopback");
    expect(k.reference).toEqual([{ tool: "cp", label: "-r" }]);
    const ids = (s: ScenarioSpec): string[] => s.cases.map((c) => `${c.tool}/${labelOf(c)}`);
    expect(ids(k)).toEqual(["escp/default", "escp/pull", "escp-orig/default", "rsync/default", "cp/-r"]);
    expect(ids(m)).toEqual(["escp/default", "escp/pull", "rsync/default", "cp/-r"]);
    // A million-file copy is deleted after its run; 100,000-file copies are kept aside like losf's.
    expect(m.copies).toBe("delete");
    expect(k.copies ?? "aside").toBe("aside");
    expect(scenario(["--scenario", "all", "--repeat", "3"], "files-1m").repeats).toBe(3);
  });

  test("1,000,000 files stay well under 10 GB", () => {
    const spec = catalogEntry("small-mixed").build({ files: 1_000_000, perdir: 1000, seed: 1 });
    const t = datasetTotals(spec);
    expect(t.files).toBe(1_000_000);
    expect(t.dirs).toBe(1010);
    expect(t.bytes).toBeLessThan(4e9);
  }, 60_000);

  test("--smoke: a few hundred files in dirs of 50, one repeat; --files overrides every tree scenario", () => {
    const k = scenario(["--smoke"], "files-100k");
    const m = scenario(["--smoke", "--scenario", "files-1m"], "files-1m");
    expect(k.dataset?.params).toEqual({ files: 300, perdir: MANY_FILES_PER_DIR.smoke, seed: 1 });
    expect(m.dataset?.params).toEqual({ files: 600, perdir: MANY_FILES_PER_DIR.smoke, seed: 1 });
    expect([k.repeats, m.repeats]).toEqual([1, 1]);
    // CI time: the smoke files-100k has no pull (losf's smoke pull runs the same path).
    expect(k.cases.map((c) => `${c.tool}/${labelOf(c)}`)).toEqual(["escp/default", "escp-orig/default", "rsync/default", "cp/-r"]);
    expect(m.cases.map((c) => `${c.tool}/${labelOf(c)}`)).toEqual(["escp/default", "escp/pull", "rsync/default", "cp/-r"]);
    const over = buildMatrix(parseOptions(["--scenario", "all", "--files", "5000"]));
    for (const name of ["losf", "mixed", "files-100k", "files-1m"]) expect(over.find((s) => s.name === name)?.dataset?.params.files).toBe(5000);
    expect(over.find((s) => s.name === "big-random")?.dataset?.params.files).toBeUndefined();
  });
});

describe("files-100k / files-1m in the report", () => {
  const rep = (filesPerS: number, sender: number | null, receiver: number | null) => ({
    wallS: 100_000 / filesPerS,
    gbps: 0.1,
    filesPerS,
    cpuS: 10,
    cpuSPerGiB: 30,
    rssSenderMiB: sender,
    rssReceiverMiB: receiver,
    verified: true,
    exitCode: 0,
  });
  const kase = (tool: CaseResult["tool"], label: string, filesPerS: number, sender: number | null, receiver: number | null): CaseResult => {
    const r = rep(filesPerS, sender, receiver);
    return {
      id: `files-100k/${tool}/${label}`,
      scenario: "files-100k",
      tool,
      label,
      config: [],
      dataset: { name: "small-mixed", params: { files: 100_000, perdir: 1000, seed: 1 }, bytes: 328_076_202, files: 100_000 },
      bytes: 328_076_202,
      files: 100_000,
      reference: tool === "cp",
      repeats: [r],
      median: { ...r, toolGbps: null, n: 1 },
    };
  };
  const results: MacroResults = {
    schema: SCHEMA,
    mode: "full",
    startedAt: "2026-12-02T12:00:00.000Z",
    finishedAt: "2026-12-02T12:10:00.000Z",
    durationS: 600,
    options: {},
    host: {
      cpuModel: "test",
      nproc: 2,
      cpuFlags: {},
      memGiB: 1,
      kernel: "k",
      os: "o",
      bun: "b",
      fsType: "ext4",
      fsSource: "/dev/x",
      loadavgBefore: [0, 0, 0],
      loadavgAfter: [0, 0, 0],
      congestionControl: "bbr",
      gitSha: "x",
      gitShort: "x",
      gitDirty: false,
      date: "d",
      tools: {},
    },
    cpuAccounting: { mode: "cgroup-v1-cpuacct", partial: false, note: "" },
    pageCache: { drop: true, note: "" },
    scenarios: [{ name: "files-100k", title: "100,000 files", reference: ["files-100k/cp/-r"], meta: { datasetMadeS: 9.4 } }],
    cases: [
      kase("escp", "default", 4000, 321, 123),
      kase("escp", "pull", 5000, 111, 222),
      kase("rsync", "default", 2000, 50, 60),
      kase("cp", "-r", 20_000, 5, null),
    ],
    skipped: [],
    notes: [],
  };

  test("files/s is the primary figure", () => {
    expect(primaryMetric("files-100k")).toBe("filesPerS");
    expect(primaryMetric("files-1m")).toBe("filesPerS");
  });

  test("the markdown table has files/s, × cp -r and both sides' peak RSS", () => {
    const md = markdown(results, "x.svg");
    expect(md).toContain("## files-100k");
    expect(md).toContain(
      "| tool | config | median files/s | GB/s | × ref | own GB/s | wall s | CPU s | CPU s/GiB | CPU-s/GiB sender / receiver / ssh+sshd | RSS sender MiB | RSS receiver MiB | verified |",
    );
    expect(md).toMatch(/\| \*\*escp\*\* \| default \| 4,000 \| 0\.100 \| 0\.20× \|.*\| 321 \| 123 \| 1\/1 \|/);
    expect(md).toMatch(/\| \*\*escp\*\* \| pull \| 5,000 \|.*\| 111 \| 222 \| 1\/1 \|/);
    expect(md).toContain("made by this run in 9.4 s");
  });

  test("key figures: escp vs rsync and cp -r, pull vs push, RSS of both sides", () => {
    const figs = keyFigures(results).filter((f) => f.group === "files-100k: 100,000 files of 0–64 KiB");
    const by = (what: string): string | undefined => figs.find((f) => f.what === what)?.value;
    expect(by("escp (push)")).toBe("4,000 files/s");
    expect(by("escp / rsync -e ssh")).toBe("2.00×");
    expect(by("escp / cp -r (filesystem limit)")).toBe("0.20×");
    expect(by("escp pull / push (same tree, same sshd)")).toBe("1.25×");
    expect(by("peak RSS sender / receiver: escp")).toBe("321 / 123 MiB");
    expect(by("peak RSS sender / receiver: escp pull")).toBe("111 / 222 MiB");
    expect(by("peak RSS sender / receiver: rsync")).toBe("50 / 60 MiB");
    expect(by("peak RSS sender / receiver: cp -r")).toBe("5 / - MiB");
  });
});
