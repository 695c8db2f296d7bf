// Walks the sources into the file list the sender announces: regular files and directories
// with their relative names; everything it cannot or will not send becomes a per-item problem.
import { lstatSync, readdirSync, statSync, type Stats } from "node:fs";
import { basename, join, resolve } from "node:path";
import { EscpError, describeSysError } from "../errors/escp-error.ts";

export interface SourceSpec {
  path: string; // as the user gave it
  dst?: string; // per-file destination name (from --filelist pairs)
}

export interface FoundEntry {
  kind: "file" | "dir";
  path: string; // absolute local path
  name: string; // relative, '/'-separated destination name (top level = the source's basename)
  size: number;
  mode: number;
  mtimeSec: number;
  mtimeNsec: number;
  atimeSec: number;
  atimeNsec: number;
  dst?: string;
}

export interface Discovery {
  entries: FoundEntry[];
  topLevel: { name: string; isDir: boolean }[];
  problems: EscpError[];
  totalBytes: number;
  fileCount: number;
}

function timeParts(ms: number, ns: bigint | undefined): [number, number] {
  if (ns !== undefined) return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
  const sec = Math.floor(ms / 1000);
  return [sec, Math.round((ms - sec * 1000) * 1e6)];
}

function entryFrom(kind: "file" | "dir", path: string, name: string, st: Stats, big: { mtimeNs?: bigint; atimeNs?: bigint }): FoundEntry {
  const [mtimeSec, mtimeNsec] = timeParts(st.mtimeMs, big.mtimeNs);
  const [atimeSec, atimeNsec] = timeParts(st.atimeMs, big.atimeNs);
  return { kind, path, name, size: kind === "file" ? st.size : 0, mode: st.mode & 0o7777, mtimeSec, mtimeNsec, atimeSec, atimeNsec };
}

function statFollow(path: string): { st: Stats; big: { mtimeNs: bigint; atimeNs: bigint } } {
  const b = statSync(path, { bigint: true });
  return { st: statSync(path), big: { mtimeNs: b.mtimeNs, atimeNs: b.atimeNs } };
}

class Walker {
  readonly out: Discovery = { entries: [], topLevel: [], problems: [], totalBytes: 0, fileCount: 0 };
  constructor(private readonly recursive: boolean) {}

  private problem(code: "E_SOURCE_MISSING" | "E_SOURCE_UNREADABLE", path: string, why: string): void {
    this.out.problems.push(new EscpError(code, `${path}: ${why}`, { path }));
  }

  private add(e: FoundEntry): void {
    this.out.entries.push(e);
    if (e.kind === "file") {
      this.out.fileCount++;
      this.out.totalBytes += e.size;
    }
  }

  source(spec: SourceSpec): void {
    const abs = resolve(spec.path);
    let found;
    try {
      found = statFollow(abs);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOENT" && lstatOk(abs)) return this.problem("E_SOURCE_MISSING", spec.path, "dangling symbolic link");
      return this.problem(code === "ENOENT" ? "E_SOURCE_MISSING" : "E_SOURCE_UNREADABLE", spec.path, describeSysError(e));
    }
    const name = basename(abs) || "/";
    if (found.st.isDirectory()) {
      if (!this.recursive) return this.problem("E_SOURCE_UNREADABLE", spec.path, "is a directory (use -r)");
      this.out.topLevel.push({ name, isDir: true });
      this.dir(abs, name, found, new Set());
    } else if (found.st.isFile()) {
      this.out.topLevel.push({ name, isDir: false });
      this.add({ ...entryFrom("file", abs, name, found.st, found.big), ...(spec.dst === undefined ? {} : { dst: spec.dst }) });
    } else {
      this.problem("E_SOURCE_UNREADABLE", spec.path, "not a regular file or directory");
    }
  }

  private dir(abs: string, name: string, found: ReturnType<typeof statFollow>, ancestors: Set<string>): void {
    const id = `${found.st.dev}:${found.st.ino}`;
    if (ancestors.has(id)) return this.problem("E_SOURCE_UNREADABLE", abs, "symbolic link loop, skipped");
    this.add(entryFrom("dir", abs, name, found.st, found.big));
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (e) {
      return this.problem("E_SOURCE_UNREADABLE", abs, describeSysError(e));
    }
    names.sort();
    const chain = new Set(ancestors).add(id);
    for (const child of names) {
      const childAbs = join(abs, child);
      const childName = `${name}/${child}`;
      let st;
      try {
        st = statFollow(childAbs);
      } catch (e) {
        this.problem("E_SOURCE_UNREADABLE", childAbs, lstatOk(childAbs) && (e as { code?: string }).code === "ENOENT" ? "dangling symbolic link, skipped" : describeSysError(e));
        continue;
      }
      if (st.st.isDirectory()) this.dir(childAbs, childName, st, chain);
      else if (st.st.isFile()) this.add(entryFrom("file", childAbs, childName, st.st, st.big));
      else this.problem("E_SOURCE_UNREADABLE", childAbs, "not a regular file or directory, skipped");
    }
  }
}

function lstatOk(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Discover every source up front (totals drive the progress bar). */
export function discover(sources: SourceSpec[], recursive: boolean): Discovery {
  const w = new Walker(recursive);
  for (const s of sources) w.source(s);
  return w.out;
}
