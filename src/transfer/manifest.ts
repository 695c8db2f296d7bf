// --manifest FILE: one b3sum line per verified file, relative to the destination root, so that
// `cd DEST && b3sum -c FILE` checks the copy. Lines go to a temporary created O_EXCL beside FILE
// as files verify (buffered, written at least every second); at the end of the run — success or
// failure — the temporary is fsynced and renamed over FILE, so FILE is never half-written. A
// process killed outright leaves only the temporary (`.<name>.escp-<random>.tmp`).
import { randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { describeSysError, EscpError } from "../errors/escp-error.ts";

/**
 * One manifest line in b3sum's format: the 64-digit lowercase hex digest, two spaces, the name.
 * A name holding a backslash or a newline is escaped as b3sum (1.x) prints and its check mode
 * reads it: the line starts with a backslash, and in the name `\` becomes `\\` and a newline
 * `\n`. Nothing else is escaped (b3sum 1.x takes a carriage return as is).
 */
export function manifestLine(digestHex: string, name: string): string {
  if (!/^[0-9a-f]{64}$/.test(digestHex)) throw new EscpError("E_INTERNAL", `manifest: ${JSON.stringify(digestHex)} is not a BLAKE3 hex digest`);
  if (!name.includes("\\") && !name.includes("\n")) return `${digestHex}  ${name}\n`;
  return `\\${digestHex}  ${name.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}\n`;
}

const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 1000;

function hexOf(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("hex");
}

export class ManifestWriter {
  /** Where the manifest ends up (FILE resolved against the cwd). */
  readonly path: string;
  /** The temporary beside it, renamed over it at the end. */
  readonly tmp: string;
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private lastWrite: number;
  private failure: string | undefined; // why the manifest cannot be written (the first error)
  lines = 0;

  private constructor(
    path: string,
    tmp: string,
    fd: number,
    private readonly nowMs: () => number,
  ) {
    this.path = path;
    this.tmp = tmp;
    this.fd = fd;
    this.lastWrite = nowMs();
  }

  /**
   * Opens the temporary for `--manifest FILE` (FILE as the user gave it). Before any data
   * moves, so a FILE that cannot be written is an E_USAGE error naming --manifest and why.
   */
  static open(file: string, nowMs: () => number = () => performance.now()): ManifestWriter {
    const path = resolve(file);
    const dir = dirname(path);
    const bad = (why: string): EscpError => new EscpError("E_USAGE", `--manifest ${file}: ${why}`, { path: file });
    try {
      if (statSync(path).isDirectory()) throw bad("is a directory");
    } catch (e) {
      if (e instanceof EscpError) throw e;
      if ((e as { code?: string }).code !== "ENOENT") throw bad(describeSysError(e));
    }
    const tmp = join(dir, `.${basename(path)}.escp-${randomBytes(6).toString("hex")}.tmp`);
    let fd: number;
    try {
      fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o666);
    } catch (e) {
      throw bad(`cannot write in ${dir}: ${describeSysError(e)}`);
    }
    return new ManifestWriter(path, tmp, fd, nowMs);
  }

  /** A verified file: its digest (32 bytes) and its name relative to the destination root. */
  add(digest: Uint8Array, rel: string): void {
    if (this.fd === undefined) return;
    const line = manifestLine(hexOf(digest), rel);
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.lines++;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  /** Called often (every pass of the transfer loop): writes what waited a second or more. */
  poll(): void {
    if (this.pending.length > 0 && this.nowMs() - this.lastWrite >= FLUSH_MS) this.flush();
  }

  private flush(): void {
    this.lastWrite = this.nowMs();
    if (this.fd === undefined || this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    this.pendingBytes = 0;
    if (this.failure !== undefined) return;
    try {
      const buf = Buffer.from(text, "utf8");
      for (let off = 0; off < buf.length; ) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      this.failure = `write failed: ${describeSysError(e)}`;
    }
  }

  /**
   * The end of the run: write the rest, fsync, rename over FILE. Returns why that failed
   * (then the temporary is removed and FILE left as it was), or undefined. Safe to call twice.
   */
  commit(): string | undefined {
    const fd = this.fd;
    if (fd === undefined) return undefined;
    this.flush();
    this.fd = undefined;
    try {
      if (this.failure === undefined) fsyncSync(fd);
    } catch (e) {
      this.failure = `fsync failed: ${describeSysError(e)}`;
    }
    try {
      closeSync(fd);
    } catch {
      // closing a written, fsynced file does not fail in a way that matters here
    }
    if (this.failure === undefined) {
      try {
        renameSync(this.tmp, this.path);
        syncDir(dirname(this.path));
        return undefined;
      } catch (e) {
        this.failure = `cannot rename ${this.tmp} to it: ${describeSysError(e)}`;
      }
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      // already gone
    }
    return this.failure;
  }
}

/** Makes a rename durable; a directory that cannot be opened or synced is not an error. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // best effort: the file itself is fsynced
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
