// The one error type escp throws: a stable code, a scope and the facts a user needs
// (path, errno, stream). Messages are one line and name the file or flag and the cause.
import { ERROR_CODES, type ErrorCode, type ErrorScope } from "./codes.ts";

export interface EscpErrorFacts {
  path?: string;
  errno?: string | number;
  stream?: number;
  retryable?: boolean;
  cause?: unknown;
}

export class EscpError extends Error {
  readonly code: ErrorCode;
  readonly scope: ErrorScope;
  readonly path: string | undefined;
  readonly errno: string | number | undefined;
  readonly stream: number | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, facts: EscpErrorFacts = {}) {
    super(message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.name = "EscpError";
    this.code = code;
    this.scope = ERROR_CODES[code].scope;
    this.path = facts.path;
    this.errno = facts.errno;
    this.stream = facts.stream;
    this.retryable = facts.retryable ?? false;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }
}

/** Wrap anything thrown into an EscpError (unknown errors are internal bugs). */
export function toEscpError(e: unknown): EscpError {
  if (e instanceof EscpError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new EscpError("E_INTERNAL", `internal error: ${msg}`, { cause: e });
}

/** Text for a Node/Bun system error: "Permission denied" style, from err.code. */
export function describeSysError(e: unknown): string {
  const code = (e as { code?: string } | null)?.code;
  const known: Record<string, string> = {
    ENOENT: "No such file or directory",
    EACCES: "Permission denied",
    EPERM: "Operation not permitted",
    ENOTDIR: "Not a directory",
    EISDIR: "Is a directory",
    ENOSPC: "No space left on device",
    EEXIST: "File exists",
    ELOOP: "Too many levels of symbolic links",
    ENAMETOOLONG: "File name too long",
    EROFS: "Read-only file system",
    EDQUOT: "Disk quota exceeded",
  };
  if (code && known[code]) return known[code];
  return e instanceof Error ? e.message : String(e);
}
