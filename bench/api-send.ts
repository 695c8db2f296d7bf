// The library's send() of an in-memory generator against the CLI's `escp - DEST` on the same
// bytes, in one run: N GiB (default 1) of the same 64 MiB random pattern, to a local
// destination with the receiver's engine dummy (nothing written: `--ioengine posix::dummy`,
// so the CLI really reads its standard input), best of R runs each (default 3), interleaved.
// Prints both rates and the ratio API / CLI (issue 15's target: ≥ 0.90).
// Usage: bun bench/api-send.ts [GiB] [runs]
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import { send } from "../src/lib/index.ts";
import { parseCli, positiveNumber, usageExit } from "../harness/cli-args.ts";

const cli = parseCli("api-send", process.argv.slice(2), { usage: "usage: bun bench/api-send.ts [GiB] [runs]", positionals: true, options: {} });
if (cli.positionals.length > 2) usageExit("api-send", `takes at most two arguments (GiB, runs), got ${cli.positionals.length}`);
const GIB = positiveNumber("api-send", "GiB", cli.positionals[0], 1);
const RUNS = positiveNumber("api-send", "runs", cli.positionals[1], 3);
const PATTERN = 64 << 20;
const CHUNK = 1 << 20;
const total = Math.round(GIB * 1024) * (1 << 20);
const dir = mkdtempSync(join(tmpdir(), "escp-bench-api-"));
const pattern = new Uint8Array(randomBytes(PATTERN));
const input = join(dir, "input.bin");
const MAIN = join(import.meta.dir, "..", "src", "cli", "main.ts");

function writeInput(): void {
  const fd = openSync(input, "w");
  for (let off = 0; off < total; off += PATTERN) writeSync(fd, pattern, 0, Math.min(PATTERN, total - off));
  closeSync(fd);
}

async function* generate(): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < total; off += CHUNK) {
    const at = off % PATTERN;
    yield pattern.subarray(at, at + Math.min(CHUNK, total - off));
  }
}

async function cliOnce(): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn([process.execPath, MAIN, "-q", "--escp_port", "0", "--ioengine", "posix::dummy", "-", join(dir, "cli.out")], {
    stdin: Bun.file(input),
    stdout: "inherit",
    stderr: "inherit",
  });
  if ((await p.exited) !== 0) throw new Error(`escp exited ${p.exitCode}`);
  return (performance.now() - t0) / 1000;
}

async function apiOnce(): Promise<number> {
  const t0 = performance.now();
  const r = await send(generate(), join(dir, "api.out"), { escpPort: 0, ioengine: "posix::dummy" });
  if (!r.ok || r.bytes !== total) throw new Error(`send: ${JSON.stringify(r)}`);
  return (performance.now() - t0) / 1000;
}

try {
  writeInput();
  let cli = Infinity;
  let api = Infinity;
  for (let i = 0; i < RUNS; i++) {
    cli = Math.min(cli, await cliOnce());
    api = Math.min(api, await apiOnce());
  }
  const rate = (s: number): string => `${(total / s / (1 << 20)).toFixed(1)} MiB/s`;
  console.log(`${GIB} GiB, best of ${RUNS}, wall time from the call (the CLI: from spawn, its process start included)`);
  console.log(`CLI  escp - DEST : ${cli.toFixed(2)} s  ${rate(cli)}`);
  console.log(`API  send(gen)   : ${api.toFixed(2)} s  ${rate(api)}`);
  console.log(`ratio API/CLI (throughput): ${(cli / api).toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
