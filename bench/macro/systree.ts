// The system-tree scenario (issue 13): real directories (/usr/include and
// /usr/lib/x86_64-linux-gnu) copied as they are, with archive semantics, as two sources of
// one command into a fresh directory. Here: the sources' inventory (lstat, no link followed),
// the command line of every case, and the check that each copy is its source as rsync sees
// it: `rsync -a --dry-run --itemize-changes` must find nothing to do.
import { lstatSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { ESCP_MAIN } from "../../harness/escp-run.ts";
import { runProc } from "./proc.ts";
import type { CaseSpec } from "./scenarios.ts";
import { type Endpoint, remoteEscpCommand, summarySeconds, type RunCommand } from "./tools.ts";
import type { Verdict } from "./verify.ts";

/** What one source directory holds, by lstat (symbolic links not followed). */
export interface SourceCounts {
  path: string;
  /** Directories, the source itself included. */
  dirs: number;
  /** Regular files (every path, hard links included). */
  files: number;
  symlinks: number;
  /** Regular-file paths whose inode has another path in the sources (hard links kept by -a). */
  hardlinks: number;
  /** Inodes with more than one path in the sources. */
  hardlinkGroups: number;
  /** Devices, FIFOs and sockets (escp -a skips them with a notice). */
  other: number;
  /** Sizes of the regular files, each inode once (what a copy that keeps hard links writes). */
  bytes: number;
  /** Sizes of every regular-file path (what a copy that does not keep hard links writes). */
  bytesAllPaths: number;
}

export interface SystemTree {
  sources: SourceCounts[];
  /** The sums over the sources (path "+"-joined). */
  total: SourceCounts;
  /** Seconds the inventory took. */
  seconds: number;
}

/** Walks the sources with lstat and counts what a copy must reproduce. Hard links are found
 *  across all sources (a group spanning both counts once). Throws if a source is missing or
 *  not a directory, or two sources share a basename (their copies would collide). */
export function inventory(sources: readonly string[]): SystemTree {
  const t0 = performance.now();
  const names = new Set<string>();
  for (const src of sources) {
    const st = lstatSync(src);
    if (!st.isDirectory()) throw new Error(`${src} is not a directory`);
    if (names.has(basename(src))) throw new Error(`two sources are named ${basename(src)}`);
    names.add(basename(src));
  }
  // inode key → [source index of each path]
  const inodes = new Map<string, { size: number; where: number[] }>();
  const counts: SourceCounts[] = sources.map((path) => ({
    path,
    dirs: 0,
    files: 0,
    symlinks: 0,
    hardlinks: 0,
    hardlinkGroups: 0,
    other: 0,
    bytes: 0,
    bytesAllPaths: 0,
  }));
  sources.forEach((src, i) => {
    const c = counts[i] as SourceCounts;
    const pending = [src];
    while (pending.length > 0) {
      const dir = pending.pop() as string;
      c.dirs++;
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        const st = lstatSync(p, { bigint: true });
        if (st.isDirectory()) pending.push(p);
        else if (st.isSymbolicLink()) c.symlinks++;
        else if (st.isFile()) {
          c.files++;
          c.bytesAllPaths += Number(st.size);
          const key = `${st.dev}:${st.ino}`;
          const seen = inodes.get(key);
          if (seen) seen.where.push(i);
          else inodes.set(key, { size: Number(st.size), where: [i] });
        } else c.other++;
      }
    }
  });
  for (const { size, where } of inodes.values()) {
    const first = counts[where[0] as number] as SourceCounts;
    first.bytes += size;
    if (where.length > 1) {
      first.hardlinkGroups++;
      for (const i of where) (counts[i] as SourceCounts).hardlinks++;
    }
  }
  const total: SourceCounts = {
    path: sources.join(" + "),
    dirs: 0,
    files: 0,
    symlinks: 0,
    hardlinks: 0,
    hardlinkGroups: 0,
    other: 0,
    bytes: 0,
    bytesAllPaths: 0,
  };
  for (const c of counts) {
    for (const k of ["dirs", "files", "symlinks", "hardlinks", "hardlinkGroups", "other", "bytes", "bytesAllPaths"] as const) total[k] += c[k];
  }
  return { sources: counts, total, seconds: (performance.now() - t0) / 1000 };
}

/** One line per source for the console. */
export function inventoryLines(t: SystemTree): string[] {
  const one = (c: SourceCounts): string =>
    `${c.path}: ${c.files.toLocaleString("en-US")} files, ${c.symlinks} symlinks, ${c.hardlinks} hard-linked paths (${c.hardlinkGroups} inode${c.hardlinkGroups === 1 ? "" : "s"}), ${c.dirs} dirs, ${c.other} devices/FIFOs/sockets, ${(c.bytes / 1e6).toFixed(1)} MB (${(c.bytesAllPaths / 1e6).toFixed(1)} MB counting every hard link)`;
  return [...t.sources.map(one), `total ${one(t.total)}`];
}

/** The copy of each source: DEST/<basename>. */
export const copyOf = (runDir: string, src: string): string => join(runDir, basename(src));

/** The command that copies the sources into `runDir` (an existing empty directory): each
 *  source becomes runDir/<basename>, as with scp, rsync (sources without a trailing slash)
 *  and cp given several sources and a directory. */
export function buildSystemCommand(c: CaseSpec, sources: readonly string[], runDir: string, ep: Endpoint): RunCommand {
  const pre = ep.senderPrefix;
  switch (c.tool) {
    case "escp": {
      const base = [...pre, process.execPath, ESCP_MAIN, ...ep.escpSshArgs, "-D", remoteEscpCommand(c), ...c.flags];
      const argv = c.pull
        ? [...base, ...sources.map((s) => `${ep.user}@${ep.host}:${s}`), `${runDir}/`]
        : [...base, ...sources, `${ep.user}@${ep.host}:${runDir}/`];
      return { argv, dst: runDir, nothingWritten: false, toolSeconds: summarySeconds };
    }
    case "rsync":
      return { argv: [...pre, "rsync", ...c.flags, "-e", `ssh -F ${ep.sshConfig}`, ...sources, `${ep.host}:${runDir}/`], dst: runDir, nothingWritten: false };
    case "cp":
      return { argv: [...pre, "cp", ...c.flags, ...sources, `${runDir}/`], dst: runDir, nothingWritten: false };
    default:
      throw new Error(`${c.tool} has no system-tree command`);
  }
}

/** The check of one copy: what `rsync -a` would still change in it. --delete lists what the
 *  copy has beyond the source (a left-over partial, a stray file); devices, FIFOs and
 *  sockets are left out (escp -a skips them by design; the inventory counts them); -H when
 *  the tool claims to keep hard links (a hard link copied as a separate file is then an
 *  `hf … => …` line). No line is ignored, not even `.d..t...... ./` for the copy's top
 *  directory: rsync prints it only when that directory's mtime (or mode, owner) differs, and
 *  an archive copy sets those too (cp -a and rsync -a do). */
export function checkArgv(src: string, copy: string, hardLinks: boolean): string[] {
  return [
    "rsync",
    "-a",
    ...(hardLinks ? ["-H"] : []),
    "--delete",
    "--no-devices",
    "--no-specials",
    "--dry-run",
    "--itemize-changes",
    "--numeric-ids",
    `${src}/`,
    `${copy}/`,
  ];
}

/** Every source against its copy; the first 20 itemized lines of each make the error. */
export async function verifySystemCopy(sources: readonly string[], runDir: string, hardLinks: boolean): Promise<Verdict> {
  const problems: string[] = [];
  for (const src of sources) {
    const argv = checkArgv(src, copyOf(runDir, src), hardLinks);
    const res = await runProc(argv, { timeoutMs: 600_000 });
    const lines = res.stdout.split("\n").filter((l) => l.trim() !== "");
    if (res.code !== 0) problems.push(`${argv.join(" ")} exited ${res.code}: ${res.stderr.trim().split("\n").slice(0, 5).join(" | ")}`);
    else if (lines.length > 0)
      problems.push(
        `rsync -a${hardLinks ? " -H" : ""} would change ${lines.length} entr${lines.length === 1 ? "y" : "ies"} of ${basename(src)}: ${lines.slice(0, 20).join(" | ")}`,
      );
  }
  return problems.length === 0 ? { ok: true } : { ok: false, error: problems.join("; ") };
}
