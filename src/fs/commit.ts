// Receiver-side file commit: temporary names beside the destination, rename into place only
// after verification, metadata (-p) applied to the final name, temporaries removed on failure.
import { accessSync, chmodSync, constants, mkdirSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { dirname, join } from "node:path";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import type { FileEntry } from "../control/messages.ts";

/** Short, per-session, per-file temp name in the destination's own directory (so rename is atomic). */
export function tempPathFor(finalPath: string, sidHex: string, fino: number): string {
  return join(dirname(finalPath), `.escp-${sidHex.slice(0, 12)}-${fino}.part`);
}

export function ensureDir(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    throw new EscpError("E_WRITE", `cannot create directory ${path}: ${describeSysError(e)}`, { path });
  }
  if (!statSync(path).isDirectory()) throw new EscpError("E_WRITE", `${path}: not a directory`, { path });
}

export function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // best effort: the temp may never have been created
  }
}

/** Move a verified temp file into place; with -p apply the exact mode and the times first.
 * Without -p the temp was created with (mode & 0o777) | 0o600 (the umask applied by open),
 * so committing is a single rename unless the source lacked owner read/write. */
export function commitFile(tmp: string, finalPath: string, e: FileEntry, preserve: boolean, umask: number): void {
  try {
    if (preserve) chmodSync(tmp, e.mode & 0o7777);
    else if ((e.mode & 0o600) !== 0o600) chmodSync(tmp, e.mode & 0o777 & ~umask);
    if (preserve) utimesSync(tmp, e.atimeSec + e.atimeNsec / 1e9, e.mtimeSec + e.mtimeNsec / 1e9);
    renameSync(tmp, finalPath);
  } catch (err) {
    removeQuietly(tmp);
    throw new EscpError("E_WRITE", `${finalPath}: ${describeSysError(err)}`, { path: finalPath });
  }
}

/** -p on directories: after all files landed (adding files changes a directory's mtime). */
export function applyDirMeta(path: string, e: FileEntry): void {
  try {
    chmodSync(path, e.mode & 0o7777);
    utimesSync(path, e.atimeSec + e.atimeNsec / 1e9, e.mtimeSec + e.mtimeNsec / 1e9);
  } catch {
    // directory metadata is best effort, like scp -p
  }
}

/** The destination directory must exist and accept new entries. */
export function checkWritable(dir: string): void {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new EscpError("E_DEST", `destination ${dir} is not writable: ${describeSysError(e)}`, { path: dir });
  }
}
