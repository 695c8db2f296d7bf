import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { CliError, helpText, parseCliOrThrow } from "./cli-args.ts";

const REPO = resolve(import.meta.dir, "..");
const spec = {
  usage: "usage: prog [options] [FILE...]",
  positionals: true,
  options: { out: { type: "string" as const, help: "where" }, quick: { type: "boolean" as const, short: "q", help: "fast" } },
};

function err(argv: string[]): string {
  try {
    parseCliOrThrow(argv, spec);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error(`parsed ${argv.join(" ")}`);
}

describe("cli-args", () => {
  test("parses values, booleans, short flags and positionals", () => {
    expect(parseCliOrThrow(["--out", "a", "-q", "f1", "--out=b", "f2"], spec)).toEqual({
      values: { out: "b", quick: true },
      positionals: ["f1", "f2"],
      help: false,
    });
  });

  test("bad command lines give one-line messages naming the flag", () => {
    expect(err(["--foo"])).toBe("unknown option --foo");
    expect(err(["-z"])).toBe("unknown option -z");
    expect(err(["--out"])).toBe("--out needs a value");
    expect(err(["--out="])).toBe("--out needs a value");
    expect(err(["--quick=yes"])).toBe("--quick takes no value");
  });

  test("a dashValue option takes the next argument even when it starts with a dash", () => {
    const withFlags = { usage: "u", options: { flags: { type: "string" as const, dashValue: true }, size: { type: "string" as const } } };
    expect(parseCliOrThrow(["--flags", "--nochecksum -P 2", "--size", "5"], withFlags).values).toEqual({ flags: "--nochecksum -P 2", size: "5" });
    expect(() => parseCliOrThrow(["--size", "-5"], withFlags)).toThrow('--size needs a value (one starting with "-" is written --size=VALUE)');
  });

  test("unexpected positional when the script takes none", () => {
    expect(() => parseCliOrThrow(["stray"], { ...spec, positionals: false })).toThrow("unexpected argument stray");
  });

  test("--help wins over bad flags and lists the options", () => {
    expect(parseCliOrThrow(["--foo", "--help"], spec).help).toBe(true);
    expect(helpText(spec)).toBe("usage: prog [options] [FILE...]\n  --out V      where\n  -q, --quick  fast");
  });
});

/** Every script that parses its arguments through cli-args: a bad flag exits 2 with exactly
 *  one line `<prog>: unknown option --bogus` on stderr, and nothing runs. */
const SCRIPTS: [string, string[]][] = [
  ["regress", ["harness/regress/run.ts"]],
  ["datasets", ["datasets/cli.ts", "make", "losf-small", "/nonexistent/never-made"]],
  ["audit", ["harness/release/audit.ts"]],
  ["bench:macro", ["bench/macro/run.ts"]],
  ["bench:micro", ["bench/micro/run.ts"]],
  ["bench:report", ["bench/report.ts"]],
  ["bench:compare", ["bench/compare.ts", "a.json", "b.json"]],
  ["journal-overhead", ["bench/journal-overhead.ts", "/nonexistent/file"]],
  ["loopback-1g", ["bench/loopback-1g.ts"]],
  ["resources", ["bench/resources.ts"]],
  ["sparse-holes", ["bench/sparse-holes.ts"]],
  ["api-send", ["bench/api-send.ts"]],
  ["wan", ["harness/wan/run.ts"]],
];

describe("scripts reject unknown flags", () => {
  for (const [prog, argv] of SCRIPTS) {
    test(`${argv[0]}`, () => {
      const r = Bun.spawnSync([process.execPath, join(REPO, argv[0] as string), ...argv.slice(1), "--bogus"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
      expect({ code: r.exitCode, stderr: r.stderr.toString(), stdout: r.stdout.toString() }).toEqual({
        code: 2,
        stderr: `${prog}: unknown option --bogus\n`,
        stdout: "",
      });
    });
  }
});

describe("scripts' own argument checks are one line with exit 2", () => {
  const cases: [string[], string][] = [
    [["bench/macro/run.ts", "--files", "0"], "bench:macro: --files 0: needs an integer 1..10000000\n"],
    [["bench/micro/run.ts", "--only", "nope"], "bench:micro: unknown topic nope (topics: ffi, crypto, blake3, zstd, frame)\n"],
    [["bench/compare.ts", "only-one.json"], "bench:compare: needs two result files A.json B.json, got 1\n"],
    [["bench/report.ts", "--out-dir"], "bench:report: --out-dir needs a value\n"],
    [["harness/regress/run.ts", "--only"], "regress: --only needs a value\n"],
    [
      ["datasets/cli.ts", "make", "losf-small", "/nonexistent/never-made", "--ratio", "2"],
      "datasets: unknown option --ratio (this dataset takes: --files, --seed)\n",
    ],
    [["bench/sparse-holes.ts", "--repeat", "0"], "sparse-holes: --repeat 0: needs a positive number\n"],
    [["bench/api-send.ts", "1", "2", "3"], "api-send: takes at most two arguments (GiB, runs), got 3\n"],
    [["harness/wan/run.ts", "--loss", "x", "--", "f", "wan:/tmp/f"], "wan: --loss x: needs a non-negative number\n"],
    [["harness/wan/run.ts", "--rtt"], "wan: needs -- and the escp arguments after its own options (see --help)\n"],
    [["datasets/cli.ts", "frob"], "datasets: unknown command frob (list or make; see --help)\n"],
  ];
  for (const [argv, stderr] of cases) {
    test(argv.join(" "), () => {
      const r = Bun.spawnSync([process.execPath, join(REPO, argv[0] as string), ...argv.slice(1)], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
      expect({ code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ code: 2, stderr });
    });
  }

  test("--help prints the usage and exits 0", () => {
    const r = Bun.spawnSync([process.execPath, join(REPO, "harness/regress/run.ts"), "--help"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toStartWith("usage: bun run regress [--quick|--full] [--out DIR] [--only SUBSTR]\n");
  });
});
