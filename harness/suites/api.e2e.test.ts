// The TypeScript library (src/lib, docs/api.md) end to end: copy (a file, a -r tree; locally and
// through the loopback sshd fixture), send from an async generator and a ReadableStream (sizes
// around the block), receive (bytes and order), progress, options validated as the CLI's flags,
// and the failure paths: abort mid-transfer for each call, a producer that throws, a consumer
// that cancels. Bytes are checked with b3sum or byte for byte; failures leave nothing under the
// destination's name, and no child process outlives a call.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { copy, EscpError, receive, send, type TransferOptions, type TransferProgress } from "../../src/lib/index.ts";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { b3sum, expectSameTree, makeAwkwardTree } from "./e2e-helpers.ts";

const B = 65_536;
const BASE: TransferOptions = { escpPort: 0, timeoutMs: 20_000, blocksize: B };
const LONG = 120_000;

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-api");
let caseNo = 0;
let before = new Set<number>(); // children that are not ours to check (the sshd fixture)

beforeAll(async () => {
  fx = await startSshd();
  before = new Set(children());
}, 60_000);

afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

function caseDir(tag: string): string {
  const d = join(tmp, `case-${++caseNo}-${tag}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Options that reach the sshd fixture (the library's equivalents of -P, -i, -o, -D). */
function remote(): TransferOptions {
  const o: string[] = [];
  for (let i = 0; i < fx.sshArgs.length; i++) if (fx.sshArgs[i] === "-o") o.push(fx.sshArgs[++i]!);
  return { ...BASE, port: fx.port, identity: fx.identity, sshOptions: o, escp: ESCP_REMOTE_CMD };
}
const H = (path: string): string => `${fx.user}@${fx.host}:${path}`;

function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, off = 0; off < n; i++) {
    const h = createHash("sha512").update(`${seed}:${i}`).digest();
    const k = Math.min(h.length, n - off);
    out.set(h.subarray(0, k), off);
    off += k;
  }
  return out;
}

/** Uneven chunks of data (1, 7, 1000, 70001 … bytes), so blocks straddle chunk edges. */
async function* chunked(data: Uint8Array): AsyncGenerator<Uint8Array> {
  const sizes = [1, 7, 1000, 70_001, 3, B];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - off);
    yield data.slice(off, off + n);
    off += n;
  }
}

function streamOf(data: Uint8Array): ReadableStream<Uint8Array> {
  const it = chunked(data);
  return new ReadableStream({
    async pull(c) {
      const r = await it.next();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
  });
}

function digestOf(data: Uint8Array, dir: string): Promise<string> {
  const p = join(dir, `.ref-${++caseNo}`);
  writeFileSync(p, data);
  return b3sum(p);
}

/** This process's children (ssh, a local server) still alive, but the fixture's. */
function leftovers(): number[] {
  return children().filter((pid) => !before.has(pid));
}

function children(): number[] {
  const r = Bun.spawnSync(["pgrep", "-P", String(process.pid)]);
  const me = r.stdout.toString().trim();
  return me === ""
    ? []
    : me
        .split("\n")
        .map(Number)
        .filter((pid) => {
          const comm = Bun.spawnSync(["ps", "-o", "comm=", "-p", String(pid)])
            .stdout.toString()
            .trim();
          return comm !== "" && comm !== "ps" && comm !== "pgrep";
        });
}

async function rejection(p: PromiseLike<unknown>): Promise<EscpError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EscpError);
    return e as EscpError;
  }
  throw new Error("expected the transfer to fail");
}

describe("copy", () => {
  test(
    "a file, locally: the result counts it, b3sum agrees, progress ends at its size",
    async () => {
      const d = caseDir("copy-file");
      const data = bytesOf(3 * B + 11, 1);
      writeFileSync(join(d, "a.bin"), data);
      const seen: TransferProgress[] = [];
      const t = copy(join(d, "a.bin"), join(d, "b.bin"), { ...BASE, onProgress: (p) => seen.push(p) });
      const events: TransferProgress[] = [];
      t.on("progress", (p) => events.push(p));
      const iterated: TransferProgress[] = [];
      const iterating = (async () => {
        for await (const p of t.progress) iterated.push(p);
      })();
      const r = await t;
      await iterating;
      expect(r).toMatchObject({ ok: true, exitCode: 0, files: 1, bytes: data.length, failures: [] });
      expect(await b3sum(join(d, "b.bin"))).toBe(await b3sum(join(d, "a.bin")));
      for (const list of [seen, events, iterated]) {
        expect(list.at(-1)).toMatchObject({ bytes: data.length, files: 1 });
        expect(list.every((p, i) => i === 0 || p.bytes >= list[i - 1]!.bytes)).toBe(true);
      }
      expect(seen.some((p) => p.totalBytes === data.length)).toBe(true);
    },
    LONG,
  );

  test(
    "a tree with -r over the sshd fixture: the same tree arrives",
    async () => {
      const d = caseDir("copy-tree");
      await makeAwkwardTree(join(d, "src"), 30, 3);
      const r = await copy([join(d, "src")], H(join(d, "dst")), { ...remote(), recursive: true });
      expect(r.ok).toBe(true);
      await expectSameTree(join(d, "src"), join(d, "dst"));
    },
    LONG,
  );

  test(
    "a missing source among others: resolved with its failure and exit status 1",
    async () => {
      const d = caseDir("copy-missing");
      writeFileSync(join(d, "a"), "x");
      mkdirSync(join(d, "out"));
      const r = await copy([join(d, "a"), join(d, "nope")], join(d, "out"), BASE);
      expect(r.ok).toBe(false);
      expect(r.exitCode).toBe(1);
      expect(r.files).toBe(1);
      expect(r.failures.map((f) => f.code)).toEqual(["E_SOURCE_MISSING"]);
      expect(readFileSync(join(d, "out", "a"), "utf8")).toBe("x");
    },
    LONG,
  );

  test(
    "options are validated as the CLI's flags: unknown keys, bounds, CLI-only options",
    async () => {
      const d = caseDir("copy-usage");
      const cases: [TransferOptions, RegExp][] = [
        [{ nosuch: 1 } as TransferOptions, /options\.nosuch: unknown option/],
        [{ blocksize: 3000 }, /options\.blocksize: 3000: must be a power of two between 64K and 64M/],
        [{ threads: 0 }, /options\.threads: 0: must be an integer between 1 and 64/],
        [{ json: true } as TransferOptions, /options\.json: a command-line option only/],
        [{ retries: 2 }, /standard input cannot be read twice/],
      ];
      for (const [opts, msg] of cases) {
        const call = "retries" in opts ? send(chunked(bytesOf(1, 1)), join(d, "x"), opts) : copy(join(d, "x"), join(d, "y"), opts);
        const e = await rejection(call);
        expect(e.code).toBe("E_USAGE");
        expect(e.message).toMatch(msg);
      }
      expect(readdirSync(d)).toEqual([]);
    },
    LONG,
  );

  test(
    "abort mid-copy: E_INTERRUPTED, nothing under the final name, no child left",
    async () => {
      const d = caseDir("copy-abort");
      writeFileSync(join(d, "big"), bytesOf(16 << 20, 5));
      mkdirSync(join(d, "out"));
      const ac = new AbortController();
      const t = copy(join(d, "big"), join(d, "out"), { ...BASE, limit: 2 << 20, threads: 2, signal: ac.signal, onProgress: (p) => p.bytes > 0 && ac.abort() });
      const e = await rejection(t);
      expect(e.code).toBe("E_INTERRUPTED");
      expect(existsSync(join(d, "out", "big"))).toBe(false);
      expect(readdirSync(join(d, "out")).filter((n) => !n.startsWith(".big.escp-"))).toEqual([]); // only resumable partials
      expect(leftovers()).toEqual([]);
    },
    LONG,
  );
});

describe("send", () => {
  for (const [label, n] of [
    ["0 bytes", 0],
    ["1 byte", 1],
    ["block - 1", B - 1],
    ["block", B],
    ["block + 1", B + 1],
    ["3 MiB + 5", (3 << 20) + 5],
  ] as const) {
    test(
      `${label} from an async generator and from a ReadableStream: exactly the bytes, digest = b3sum`,
      async () => {
        const d = caseDir("send");
        const data = bytesOf(n, n + 3);
        const want = await digestOf(data, tmp);
        const a = await send(chunked(data), join(d, "gen.bin"), BASE);
        const b = await send(streamOf(data), join(d, "rs.bin"), { ...BASE, threads: 3 });
        for (const [r, name] of [
          [a, "gen.bin"],
          [b, "rs.bin"],
        ] as const) {
          expect(r).toMatchObject({ ok: true, files: 1, bytes: n, digest: want });
          expect(Buffer.compare(readFileSync(join(d, name)), data)).toBe(0);
        }
        expect(readdirSync(d).sort()).toEqual(["gen.bin", "rs.bin"]);
      },
      LONG,
    );
  }

  test(
    "over the sshd fixture: a few MiB arrive intact",
    async () => {
      const d = caseDir("send-ssh");
      const data = bytesOf((2 << 20) + 77, 9);
      const r = await send(chunked(data), H(join(d, "f")), remote());
      expect(r.digest).toBe(await digestOf(data, tmp));
      expect(Buffer.compare(readFileSync(join(d, "f")), data)).toBe(0);
    },
    LONG,
  );

  test(
    "a fast producer over a slow link stays a bounded distance ahead of what was sent",
    async () => {
      const d = caseDir("send-bounded");
      let yielded = 0;
      let ahead = 0;
      async function* fast(): AsyncGenerator<Uint8Array> {
        const chunk = new Uint8Array(B / 2).fill(7);
        for (let i = 0; i < 512; i++) {
          // 16 MiB
          yielded += chunk.length;
          yield chunk;
        }
      }
      const onProgress = (p: TransferProgress): void => void (ahead = Math.max(ahead, yielded - p.bytes));
      const r = await send(fast(), join(d, "f"), { ...BASE, threads: 2, limit: 4 << 20, onProgress });
      expect(r.bytes).toBe(16 << 20);
      // what the producer gave and libescp has not sent yet: at most the pool (2 blocks per
      // stream) and the chunk being copied, whatever the producer's speed
      expect(ahead).toBeLessThanOrEqual(2 * 2 * B + B / 2);
    },
    LONG,
  );

  test(
    "a slow producer (paced) still arrives whole",
    async () => {
      const d = caseDir("send-slow");
      const data = bytesOf(5 * B + 3, 11);
      async function* slow(): AsyncGenerator<Uint8Array> {
        for await (const c of chunked(data)) {
          await Bun.sleep(5); // the producer's pace, not a synchronisation
          yield c;
        }
      }
      const r = await send(slow(), join(d, "f"), BASE);
      expect(Buffer.compare(readFileSync(join(d, "f")), data)).toBe(0);
      expect(r.ok).toBe(true);
    },
    LONG,
  );

  test(
    "a producer that throws mid-stream: E_SOURCE_UNREADABLE, nothing under the name (local and over ssh)",
    async () => {
      for (const viaSsh of [false, true]) {
        const d = caseDir("send-throws");
        async function* broken(): AsyncGenerator<Uint8Array> {
          for (let i = 0; i < 5; i++) yield bytesOf(B + 1, i);
          throw new Error("producer broke");
        }
        const e = await rejection(send(broken(), viaSsh ? H(join(d, "f")) : join(d, "f"), viaSsh ? remote() : BASE));
        expect(e.code).toBe("E_SOURCE_UNREADABLE");
        expect(e.message).toContain("producer broke");
        expect(readdirSync(d)).toEqual([]);
        expect(leftovers()).toEqual([]);
      }
    },
    LONG,
  );

  test(
    "abort mid-send: E_INTERRUPTED, the producer is told to stop, nothing left behind",
    async () => {
      const d = caseDir("send-abort");
      const ac = new AbortController();
      let stopped!: () => void;
      const producerStopped = new Promise<void>((r) => (stopped = r));
      async function* endless(): AsyncGenerator<Uint8Array> {
        try {
          for (let i = 0; ; i++) {
            if (i === 20) ac.abort(); // the stream is flowing
            await Bun.sleep(1); // the producer's pace
            yield new Uint8Array(B / 4).fill(i);
          }
        } finally {
          stopped();
        }
      }
      const e = await rejection(send(endless(), join(d, "f"), { ...BASE, signal: ac.signal }));
      expect(e.code).toBe("E_INTERRUPTED");
      await producerStopped;
      expect(readdirSync(d)).toEqual([]);
      expect(leftovers()).toEqual([]);
    },
    LONG,
  );
});

describe("receive", () => {
  test(
    "a local and a remote file arrive in order, byte for byte, with the digest",
    async () => {
      const d = caseDir("recv");
      const data = bytesOf(4 * B + 123, 21);
      writeFileSync(join(d, "f"), data);
      for (const [src, opts] of [
        [join(d, "f"), { ...BASE, threads: 4 }],
        [H(join(d, "f")), remote()],
      ] as const) {
        const { stream, result } = receive(src, opts);
        const got = new Uint8Array(await new Response(stream).arrayBuffer());
        expect(Buffer.compare(got, data)).toBe(0);
        const r = await result;
        expect(r).toMatchObject({ ok: true, files: 1, bytes: data.length });
        expect(r.digest).toBe(await b3sum(join(d, "f")));
      }
    },
    LONG,
  );

  test(
    "a slow consumer gets every byte",
    async () => {
      const d = caseDir("recv-slow");
      const data = bytesOf(2 << 20, 22);
      writeFileSync(join(d, "f"), data);
      const { stream, result } = receive(join(d, "f"), BASE);
      const parts: Uint8Array[] = [];
      for await (const c of stream) {
        parts.push(c);
        await Bun.sleep(2); // the consumer's pace
      }
      expect(Buffer.compare(Buffer.concat(parts), data)).toBe(0);
      expect((await result).ok).toBe(true);
    },
    LONG,
  );

  test(
    "a missing remote file: the result rejects and the stream errors with the same error",
    async () => {
      const d = caseDir("recv-missing");
      const { stream, result } = receive(H(join(d, "nope")), remote());
      const streamErr = await rejection(new Response(stream).arrayBuffer());
      const e = await rejection(result);
      expect(e.message).toContain("nope");
      expect(streamErr).toBe(e);
      expect(leftovers()).toEqual([]);
    },
    LONG,
  );

  test(
    "the consumer cancels early: E_BROKEN_PIPE, exit status 11, no hang, no child left",
    async () => {
      const d = caseDir("recv-cancel");
      writeFileSync(join(d, "f"), bytesOf(8 << 20, 23));
      const { stream, result } = receive(join(d, "f"), BASE);
      const reader = stream.getReader();
      expect((await reader.read()).done).toBe(false);
      await reader.cancel();
      const r = await result;
      expect(r.exitCode).toBe(11);
      expect(r.failures.map((f) => f.code)).toEqual(["E_BROKEN_PIPE"]);
      expect(leftovers()).toEqual([]);
    },
    LONG,
  );

  test(
    "abort mid-receive: the result rejects with E_INTERRUPTED and so does the stream",
    async () => {
      const d = caseDir("recv-abort");
      writeFileSync(join(d, "f"), bytesOf(16 << 20, 24));
      const ac = new AbortController();
      const { stream, result } = receive(H(join(d, "f")), { ...remote(), limit: 2 << 20, signal: ac.signal });
      const reader = stream.getReader();
      expect((await reader.read()).done).toBe(false);
      ac.abort();
      const e = await rejection(result);
      expect(e.code).toBe("E_INTERRUPTED");
      const streamErr = await rejection(
        (async () => {
          for (;;) if ((await reader.read()).done) return;
        })(),
      );
      expect(streamErr.code).toBe("E_INTERRUPTED");
      expect(leftovers()).toEqual([]);
    },
    LONG,
  );
});
