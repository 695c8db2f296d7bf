// Shared steps of the end-to-end suites: make sources, run escp, assert trees and digests.
import { expect } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { runEscp } from "../escp-run.ts";
import { compareTrees } from "../compare-trees.ts";
import { b3sum } from "../b3sum.ts";
import { writeRandomFile } from "../../datasets/materialize.ts";

export { runEscp, compareTrees, b3sum, writeRandomFile };

/** Flags every e2e run uses: quiet, ephemeral data port (parallel-safe), short timeout. */
export const BASE = ["-q", "--escp_port", "0", "--timeout", "20"];

/** A TCP port on 127.0.0.1 that was free a moment ago (for --escp_port N --escp_portrange 1,
 *  when a test must know the receiver's data port before it listens). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

export async function expectOk(args: string[], opts: Parameters<typeof runEscp>[1] = {}): Promise<{ stdout: string; stderr: string }> {
  const r = await runEscp(args, opts);
  if (r.code !== 0) throw new Error(`escp ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

export async function expectSameFile(a: string, b: string): Promise<void> {
  expect(await b3sum(b)).toBe(await b3sum(a));
}

export async function expectSameTree(a: string, b: string): Promise<void> {
  expect(await compareTrees(a, b)).toEqual([]);
}

/** A small tree with the awkward cases: nesting, empty file, empty dir, spaces, unicode. */
export async function makeAwkwardTree(root: string, files = 40, seed = 7): Promise<void> {
  mkdirSync(join(root, "sub", "deeper", "deepest"), { recursive: true });
  mkdirSync(join(root, "empty dir"), { recursive: true });
  mkdirSync(join(root, "ünïcödé ✓"), { recursive: true });
  writeFileSync(join(root, "empty"), "");
  writeFileSync(join(root, "with space.txt"), "hello world\n");
  writeFileSync(join(root, "ünïcödé ✓", "日本語.bin"), "unicode\n");
  for (let i = 0; i < files; i++) {
    const dir = ["", "sub", "sub/deeper", "sub/deeper/deepest"][i % 4] ?? "";
    await writeRandomFile(join(root, dir, `f${i}.dat`), (i * 977) % 5000, seed + i);
  }
}

/** A source tree written once on first use (each test awaits the same promise): `files`
 *  maps a name to [size in bytes, seed]. */
export function lazyFiles(dir: string, files: Record<string, [number, number]>): () => Promise<void> {
  let ready: Promise<void> | undefined;
  return () =>
    (ready ??= (async () => {
      mkdirSync(dir, { recursive: true });
      for (const [name, [size, seed]] of Object.entries(files)) await writeRandomFile(join(dir, name), size, seed);
    })());
}

/** At most `n` of the functions passed to the returned gate run at once; the rest queue in
 *  order (concurrent tests that each start escp, sshd logins and a remote escp: enough to
 *  overlap their waits without swamping a 2-core machine). */
export function gate(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}
