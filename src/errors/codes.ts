// The table of escp's stable error codes: scope, exit status and a one-line meaning.
// Codes are append-only API (scripts match on them); exit statuses are documented in README.md.
export type ErrorScope = "usage" | "file" | "session";

export interface CodeInfo {
  readonly scope: ErrorScope;
  readonly exit: number;
  readonly meaning: string;
}

export const ERROR_CODES = {
  E_USAGE: { scope: "usage", exit: 2, meaning: "bad command line, flag value or configuration" },
  E_SOURCE_MISSING: { scope: "file", exit: 1, meaning: "a source path does not exist" },
  E_SOURCE_UNREADABLE: { scope: "file", exit: 1, meaning: "a source file or directory cannot be read" },
  E_SOURCE_CHANGED: { scope: "file", exit: 1, meaning: "a source file changed while it was sent" },
  E_WRITE: { scope: "file", exit: 1, meaning: "the receiver could not create or write a file" },
  E_DIGEST_MISMATCH: { scope: "file", exit: 1, meaning: "end-to-end BLAKE3 digests differ" },
  E_REJECTED_PATH: { scope: "file", exit: 1, meaning: "the receiver refused an unsafe destination name" },
  E_BUSY: { scope: "file", exit: 1, meaning: "another escp is writing the same destination file" },
  E_NOTHING: { scope: "session", exit: 1, meaning: "nothing to transfer" },
  E_DEST: { scope: "session", exit: 8, meaning: "destination missing, not a directory, or not writable" },
  E_SSH_UNREACHABLE: { scope: "session", exit: 4, meaning: "the remote host cannot be reached" },
  E_SSH_AUTH: { scope: "session", exit: 4, meaning: "SSH authentication failed" },
  E_SSH_FAILED: { scope: "session", exit: 4, meaning: "ssh failed before escp started on the remote host" },
  E_SSH_HOSTKEY: { scope: "session", exit: 4, meaning: "the SSH host key is unknown or changed" },
  E_REMOTE_MISSING: { scope: "session", exit: 5, meaning: "escp is not installed or not runnable on the remote host" },
  E_VERSION: { scope: "session", exit: 5, meaning: "the two sides speak different protocol versions" },
  E_HANDSHAKE: { scope: "session", exit: 5, meaning: "session init over the SSH channel failed" },
  E_CONNECT: { scope: "session", exit: 6, meaning: "data connections to the receiver failed" },
  E_PROTOCOL: { scope: "session", exit: 7, meaning: "malformed, unauthenticated or out-of-order message" },
  E_TIMEOUT: { scope: "session", exit: 9, meaning: "the peer stalled or vanished" },
  E_REMOTE: { scope: "session", exit: 10, meaning: "the remote side reported a session failure" },
  E_NATIVE: { scope: "session", exit: 3, meaning: "libescp.so missing, unbuilt or of another ABI" },
  E_INTERRUPTED: { scope: "session", exit: 130, meaning: "interrupted by a signal" },
  E_INTERNAL: { scope: "session", exit: 70, meaning: "a bug in escp" },
  E_BROKEN_PIPE: { scope: "file", exit: 11, meaning: "standard output closed before the stream was written (the reader went away)" },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_CODES, s);
}
