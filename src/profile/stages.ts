// The profiler's stage table: the numeric ids C writes into each span record (append-only,
// pinned with the native side), with a short name, a human label and a kind for grouping.
export type StageId = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export type StageKind = "disk" | "cpu" | "net" | "idle";

export interface StageInfo {
  readonly id: StageId;
  /** Short identifier (JSON keys, CSS classes). */
  readonly name: string;
  /** What a user reads in a trace or a report. */
  readonly label: string;
  readonly kind: StageKind;
  /** One line on what the time covers. */
  readonly about: string;
}

export const STAGES: readonly StageInfo[] = [
  { id: 0, name: "read", label: "disk read", kind: "disk", about: "pread of the source file" },
  { id: 1, name: "hash", label: "hash", kind: "cpu", about: "BLAKE3 of the block" },
  { id: 2, name: "compress", label: "compress", kind: "cpu", about: "zstd compression" },
  { id: 3, name: "seal", label: "seal", kind: "cpu", about: "encrypt and tag the block" },
  { id: 4, name: "send", label: "send", kind: "net", about: "blocked writing to the data socket" },
  { id: 5, name: "recv", label: "recv", kind: "net", about: "waiting for data from the socket" },
  { id: 6, name: "open", label: "open", kind: "cpu", about: "decrypt and authenticate the block" },
  { id: 7, name: "decompress", label: "decompress", kind: "cpu", about: "zstd decompression" },
  { id: 8, name: "write", label: "disk write", kind: "disk", about: "pwrite of the destination file" },
  { id: 9, name: "idle", label: "idle", kind: "idle", about: "waiting for work / for the file list" },
  { id: 10, name: "meta", label: "meta", kind: "disk", about: "file open/close/stat/truncate" },
];

export const STAGE_COUNT = STAGES.length;

export const STAGE = {
  read: 0,
  hash: 1,
  compress: 2,
  seal: 3,
  send: 4,
  recv: 5,
  open: 6,
  decompress: 7,
  write: 8,
  idle: 9,
  meta: 10,
} as const satisfies Record<string, StageId>;

export function isStageId(n: number): n is StageId {
  return Number.isInteger(n) && n >= 0 && n < STAGE_COUNT;
}

export function stageInfo(id: StageId): StageInfo {
  const s = STAGES[id];
  if (!s) throw new RangeError(`unknown profiler stage ${id}`);
  return s;
}
