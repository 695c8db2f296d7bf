// Opens a --logfile path for appending, never through a symlink and never into a file that was
// not made for this log (the receiver's path comes from the remote client): checked on the fd.
import { closeSync, constants, fchmodSync, fstatSync, openSync, type Stats } from "node:fs";
import { describeSysError, EscpError } from "../errors/escp-error.ts";

/** Bun and libuv open every fd close-on-exec; the flag is named too for runtimes exposing it. */
const O_CLOEXEC = (constants as { O_CLOEXEC?: number }).O_CLOEXEC ?? 0;
/** O_NONBLOCK: opening a FIFO must not wait for a reader (it is refused either way). */
const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | O_CLOEXEC | constants.O_NONBLOCK;

function refuse(path: string, why: string, errno?: string): never {
  throw new EscpError("E_USAGE", `--logfile ${path}: refusing to log there: ${why}`, { path, ...(errno ? { errno } : {}) });
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isDirectory()) return "a directory";
  return "not a regular file";
}

/** Why the opened file is not one we may append to, or undefined if it is. */
function unfit(st: Stats): string | undefined {
  const euid = process.geteuid?.() ?? st.uid;
  if (!st.isFile()) return `it is ${kindOf(st)}, not a regular file`;
  if (st.uid !== euid) return `it is owned by uid ${st.uid}, not by this user (uid ${euid})`;
  if (st.nlink !== 1) return `it has ${st.nlink} hard links (another name shares the file)`;
  if ((st.mode & 0o022) !== 0) return `it is group- or world-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`;
  return undefined;
}

function openFailure(path: string, e: unknown): never {
  const code = (e as { code?: string } | null)?.code;
  if (code === "ELOOP") refuse(path, "it is a symbolic link", code);
  if (code === "ENXIO") refuse(path, "it is a FIFO or socket, not a regular file", code);
  refuse(path, `cannot open it: ${describeSysError(e)}`, code);
}

/**
 * Opens (creating, mode 0600 whatever the umask) `path` for appending. Throws EscpError(E_USAGE)
 * naming the path and why when it is a symlink, not a regular file, owned by someone else,
 * hard-linked elsewhere or group/world-writable; then nothing was written to it.
 */
export function openLogFile(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, FLAGS, 0o600);
  } catch (e) {
    openFailure(path, e);
  }
  try {
    const why = unfit(fstatSync(fd));
    if (why !== undefined) refuse(path, why);
    fchmodSync(fd, 0o600); // new under a strict umask, or ours from before with looser read bits
    return fd;
  } catch (e) {
    closeSync(fd);
    if (e instanceof EscpError) throw e;
    refuse(path, `cannot check it: ${describeSysError(e)}`);
  }
}
