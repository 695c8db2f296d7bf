// Property: for arbitrary small trees × arbitrary valid configs a loopback escp transfer yields
// an identical tree (content and sizes; modes and mtimes too under -p), pushed to a local
// destination, pulled from a --mgmt server (`host:src dst`), or copied between two namespaced
// hosts of the multi-host fixture (`-3 h1:src h2:dst`, relayed here). Pinned cases run first.
// Replay a failure: ESCP_SEED=<seed> [ESCP_PROP_PATH=<path>] bun test harness/suites/transfer.prop.test.ts
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { blockBytes, configArgs, dummyConfig, posixConfig, type RunConfig } from "../arb/config.ts";
import { PINNED } from "../arb/pinned.ts";
import { envRuns, propRun } from "../arb/replay.ts";
import { countFiles, materializeTree, treeSpec, type TreeSpec } from "../arb/tree.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { runPair } from "../faults/pair.ts";
import { BASE, compareTrees, runEscp } from "./e2e-helpers.ts";
import { canMultiHost, startHosts, type MultiHost } from "../multihost.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";

const FILE = "harness/suites/transfer.prop.test.ts";
const prop = propRun("transfer.prop", FILE);
const RUNS = envRuns("ESCP_PROP_RUNS", 25);
const PULL_RUNS = Math.ceil((RUNS * 2) / 5);
const THIRD_RUNS = Math.ceil(RUNS / 5); // three ssh logins each: kept few
const multiHost = canMultiHost();
let hosts: MultiHost | undefined;

const tmp = makeTmpDir("transfer-prop");
afterAll(async () => {
  await hosts?.stop();
  removeTmpDir(tmp);
});
let caseNo = 0;

/** Stderr lines other than the -C warning (which is all a quiet, successful run may print). */
function unexpectedStderr(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "" && !l.includes("-C/--compress"));
}

/** Materialise `tree`, copy it with `cfg` into a fresh destination, return both roots. */
async function transfer(tree: TreeSpec, cfg: RunConfig): Promise<{ src: string; dst: string; dir: string }> {
  const dir = join(tmp, `case-${++caseNo}`);
  const src = join(dir, "src");
  mkdirSync(src, { recursive: true });
  await materializeTree(src, tree, blockBytes(cfg));
  const dst = join(dir, "dst");
  const r = await runEscp([...BASE, ...configArgs(cfg), src, dst]);
  const noise = unexpectedStderr(r.stderr);
  if (r.code !== 0 || noise.length > 0) {
    throw new Error(`escp ${configArgs(cfg).join(" ")} exited ${r.code}\nstderr: ${r.stderr}`);
  }
  return { src, dst, dir };
}

async function identicalCopy(tree: TreeSpec, cfg: RunConfig): Promise<void> {
  const { src, dst, dir } = await transfer(tree, cfg);
  try {
    const diffs = await compareTrees(src, dst, { modes: cfg.preserve, mtimes: cfg.preserve });
    if (diffs.length > 0) throw new Error(`trees differ (${configArgs(cfg).join(" ")}):\n  ${diffs.join("\n  ")}`);
  } finally {
    removeTmpDir(dir);
  }
}

/** Materialise `tree` and pull it with `cfg` from a --mgmt server into a fresh destination
 *  (the server is the data source, this side's escp the sink): the copy must be identical. */
async function identicalPull(tree: TreeSpec, cfg: RunConfig): Promise<void> {
  const dir = join(tmp, `pull-${++caseNo}`);
  const src = join(dir, "src");
  mkdirSync(src, { recursive: true });
  await materializeTree(src, tree, blockBytes(cfg));
  const dst = join(dir, "dst");
  try {
    const r = await runPair({ sock: join(dir, "s.sock"), cwd: dir, args: [...BASE, ...configArgs(cfg), `localhost:${src}`, dst] });
    const noise = [...unexpectedStderr(r.senderStderr), ...unexpectedStderr(r.receiverStderr)];
    if (r.senderCode !== 0 || r.receiverCode !== 0 || noise.length > 0) {
      throw new Error(
        `pull ${configArgs(cfg).join(" ")}: escp exited ${r.senderCode}, server ${r.receiverCode}\nstderr: ${r.senderStderr}\nserver: ${r.receiverStderr}`,
      );
    }
    const diffs = await compareTrees(src, dst, { modes: cfg.preserve, mtimes: cfg.preserve });
    if (diffs.length > 0) throw new Error(`trees differ after a pull (${configArgs(cfg).join(" ")}):\n  ${diffs.join("\n  ")}`);
  } finally {
    removeTmpDir(dir);
  }
}

/** Materialise `tree` and copy it with `cfg` from h1 to h2 (`-3`, relayed through this host; the
 *  hosts share this file system): the copy must be identical. */
async function identicalThirdParty(tree: TreeSpec, cfg: RunConfig): Promise<void> {
  hosts ??= await startHosts({ count: 2 });
  const dir = join(tmp, `third-${++caseNo}`);
  const src = join(dir, "src");
  mkdirSync(src, { recursive: true });
  await materializeTree(src, tree, blockBytes(cfg));
  const dst = join(dir, "dst");
  try {
    const r = await runEscp([...BASE, "-F", hosts.sshConfig, "-D", ESCP_REMOTE_CMD, ...configArgs(cfg), `h1:${src}`, `h2:${dst}`]);
    const noise = unexpectedStderr(r.stderr);
    if (r.code !== 0 || noise.length > 0) throw new Error(`-3 ${configArgs(cfg).join(" ")}: escp exited ${r.code}\nstderr: ${r.stderr}`);
    const diffs = await compareTrees(src, dst, { modes: cfg.preserve, mtimes: cfg.preserve });
    if (diffs.length > 0) throw new Error(`trees differ after -3 (${configArgs(cfg).join(" ")}):\n  ${diffs.join("\n  ")}`);
  } finally {
    removeTmpDir(dir);
  }
}

/** Relative paths of every directory and every non-directory under root. */
async function shape(root: string): Promise<{ dirs: string[]; others: string[] }> {
  const dirs: string[] = [];
  const others: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const rel = join(e.parentPath, e.name).slice(root.length + 1);
    (e.isDirectory() ? dirs : others).push(rel);
  }
  return { dirs: dirs.sort(), others: others.sort() };
}

describe("transfer property: pinned examples", () => {
  for (const p of PINNED) {
    test(p.why, async () => {
      expect(countFiles(p.tree.children)).toBeGreaterThan(0);
      await identicalCopy(p.tree, p.config);
    }, 60_000);
  }
});

describe("transfer property: arbitrary trees × configs", () => {
  test(`posix engine: the copy is identical (${RUNS} runs)`, async () => {
    await prop.assert(
      fc.asyncProperty(treeSpec, posixConfig, (tree, cfg) => identicalCopy(tree, cfg)),
      RUNS,
    );
  }, 300_000);

  test(`posix engine, pulled: the copy is identical (${PULL_RUNS} runs)`, async () => {
    await prop.assert(
      fc.asyncProperty(treeSpec, posixConfig, (tree, cfg) => identicalPull(tree, cfg)),
      PULL_RUNS,
    );
  }, 300_000);

  test.skipIf(!multiHost.ok)(
    `posix engine, -3 between two hosts: the copy is identical (${THIRD_RUNS} runs)`,
    async () => {
      await prop.assert(
        fc.asyncProperty(treeSpec, posixConfig, (tree, cfg) => identicalThirdParty(tree, cfg)),
        THIRD_RUNS,
      );
    },
    600_000,
  );

  test(`dummy engine: succeeds, makes the directories and writes no file (${Math.ceil(RUNS / 3)} runs)`, async () => {
    await prop.assert(
      fc.asyncProperty(treeSpec, dummyConfig, async (tree, cfg) => {
        const { src, dst, dir } = await transfer(tree, cfg);
        try {
          const [a, b] = await Promise.all([shape(src), shape(dst)]);
          if (b.others.length > 0) throw new Error(`dummy engine wrote ${b.others.join(", ")}`);
          if (a.dirs.join("\n") !== b.dirs.join("\n")) throw new Error(`directories differ: ${a.dirs} vs ${b.dirs}`);
        } finally {
          removeTmpDir(dir);
        }
      }),
      Math.ceil(RUNS / 3),
    );
  }, 300_000);
});
