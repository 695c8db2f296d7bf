// `bun bench/sparse-holes.ts [--size BYTES] [--repeat N] [--flags "ESCP FLAGS"]`: issue #13's
// sparse target — a
// sparse file with 1 % data (1 MiB islands of random bytes at seeded 1 MiB-aligned offsets)
// against a dense random file of the same size, each copied locally with escp defaults
// (loopback data streams), rounds interleaved, caches dropped before every run. Prints per
// run the wall time and the data-stream bytes (`wire`, from the initiator's --logfile), and
// the medians' ratios; every copy is checked with b3sum and must stay sparse.
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { b3sumMany } from "../harness/b3sum.ts";
import { ESCP_MAIN } from "../harness/escp-run.ts";
import { parseCli, positiveNumber } from "../harness/cli-args.ts";
import { makeTmpDir, removeTmpDir } from "../harness/tmp-dir.ts";

const MiB = 1 << 20;
const { values } = parseCli("sparse-holes", process.argv.slice(2), {
  usage: 'usage: bun bench/sparse-holes.ts [--size BYTES] [--repeat N] [--flags "ESCP FLAGS"]',
  options: {
    size: { type: "string", help: "file size in bytes (default 4 GiB)" },
    repeat: { type: "string", help: "interleaved rounds (default 3)" },
    flags: { type: "string", dashValue: true, help: 'extra escp flags, one argument (e.g. "--nochecksum")' },
  },
});
const size = positiveNumber("sparse-holes", "--size", values.size, 4096 * MiB);
const repeat = positiveNumber("sparse-holes", "--repeat", values.repeat, 3);
const flags = ((values.flags as string | undefined) ?? "").split(/\s+/).filter((w) => w !== "");
const work = makeTmpDir("bench-sparse");

/** path: `size` bytes, random data in the 1 MiB blocks listed (or every block), holes elsewhere. */
function fill(path: string, blocks: number[] | "all"): void {
  const fd = openSync(path, "w");
  const block = new Uint8Array(MiB);
  let x = 0x9e3779b9;
  const at = blocks === "all" ? Array.from({ length: size / MiB }, (_, i) => i) : blocks;
  for (const i of at) {
    for (let k = 0; k < block.length; k += 4) {
      // xorshift32: incompressible enough
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      block[k] = x & 255;
      block[k + 1] = (x >>> 8) & 255;
      block[k + 2] = (x >>> 16) & 255;
      block[k + 3] = x >>> 24;
    }
    writeSync(fd, block, 0, MiB, i * MiB);
  }
  ftruncateSync(fd, size);
  closeSync(fd);
}

function dropCaches(): void {
  Bun.spawnSync(["sync"]);
  try {
    writeFileSync("/proc/sys/vm/drop_caches", "3\n");
  } catch {
    console.log("(caches not dropped: not root)");
  }
}

async function copy(src: string, tag: string): Promise<{ wall: number; wire: number }> {
  const dst = join(work, `out-${tag}`);
  rmSync(dst, { recursive: true, force: true });
  mkdirSync(dst);
  const log = join(work, `log-${tag}`);
  dropCaches();
  const t0 = performance.now();
  const p = Bun.spawn([process.execPath, ESCP_MAIN, "-q", ...flags, "--logfile", log, src, `${dst}/`], { stdout: "inherit", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error(`escp failed on ${src}`);
  const wall = (performance.now() - t0) / 1000;
  const done = readFileSync(`${log}.client`, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .find((r) => r.msg === "session done");
  const out = join(dst, src.split("/").pop() ?? "");
  const [a, b] = await b3sumMany([src, out]);
  if (a !== b) throw new Error(`b3sum differs for ${src}`);
  if (statSync(out).blocks > statSync(src).blocks + (16 * MiB) / 512) throw new Error(`${out}: not as sparse as its source`);
  rmSync(dst, { recursive: true, force: true });
  rmSync(`${log}.client`, { force: true });
  rmSync(`${log}.server`, { force: true });
  return { wall, wire: Number(done?.fields?.wire ?? NaN) };
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;

try {
  const blocks = size / MiB;
  const n = Math.max(1, Math.round(blocks / 100));
  const step = Math.floor(blocks / n);
  const islands = Array.from({ length: n }, (_, i) => i * step + ((i * 7919) % Math.max(1, step - 1)));
  const sparse = join(work, "sparse.bin");
  const dense = join(work, "dense.bin");
  fill(sparse, islands);
  fill(dense, "all");
  console.log(`escp flags: ${flags.join(" ") || "(defaults)"}`);
  console.log(
    `sparse: ${size} bytes, ${n} MiB of data (${((100 * n) / blocks).toFixed(2)} %), ${statSync(sparse).blocks * 512} allocated; dense: ${size} bytes`,
  );
  const s: { wall: number; wire: number }[] = [];
  const d: { wall: number; wire: number }[] = [];
  for (let r = 0; r < repeat; r++) {
    s.push(await copy(sparse, "s"));
    d.push(await copy(dense, "d"));
    console.log(`round ${r}: sparse ${s[r]?.wall.toFixed(2)} s, ${s[r]?.wire} wire bytes; dense ${d[r]?.wall.toFixed(2)} s, ${d[r]?.wire} wire bytes`);
  }
  const ws = median(s.map((x) => x.wall)),
    wd = median(d.map((x) => x.wall));
  const bs = median(s.map((x) => x.wire)),
    bd = median(d.map((x) => x.wire));
  console.log(
    `median: sparse ${ws.toFixed(2)} s / dense ${wd.toFixed(2)} s = ${(ws / wd).toFixed(3)}x time; wire ${bs} / ${bd} = ${((100 * bs) / bd).toFixed(2)} % of the bytes`,
  );
} finally {
  removeTmpDir(work);
}
