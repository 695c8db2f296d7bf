// Streams one file entry to disk in 1 MiB chunks from its content generator (random, text,
// zero, sparse islands), never holding the whole file; also a chunk iterator for tests.
import { closeSync, fchmodSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { CHUNK_BYTES, fillContent } from "./content.ts";
import type { Content, FileEntry } from "./spec.ts";
import { TextSource } from "./text.ts";

/** Fills `out` with bytes [offset, offset + out.length) of a non-sparse content kind. */
export type Filler = (offset: number, out: Uint8Array) => void;

const ZEROS = new Uint8Array(CHUNK_BYTES);

export function fillerFor(content: Content, seed: number): Filler {
  switch (content.kind) {
    case "random":
    case "sparse": // island bytes are the random stream at the island's own offsets
      return (offset, out) => fillContent(seed, offset, out);
    case "text": {
      const text = new TextSource(seed, content.ratio);
      return (offset, out) => text.fill(offset, out);
    }
    case "zero":
      return (_offset, out) => out.fill(0);
  }
}

/** The data runs of a file: the whole file, or a sparse file's islands. */
function runsOf(entry: FileEntry): { offset: number; length: number }[] {
  if (entry.content.kind === "sparse") return [...entry.content.islands].sort((a, b) => a.offset - b.offset);
  return entry.size > 0 ? [{ offset: 0, length: entry.size }] : [];
}

function writeAll(fd: number, buf: Uint8Array, position: number): void {
  for (let done = 0; done < buf.length; ) {
    done += writeSync(fd, buf, done, buf.length - done, position + done);
  }
}

const chunk = new Uint8Array(CHUNK_BYTES);

/** Writes `entry` to `path` (created or truncated) and sets its mode. Sparse files are
 *  ftruncated to size first so everything between islands stays a hole. `onBytes` gets
 *  the data bytes of each chunk as it lands. */
export function writeFileEntry(path: string, entry: FileEntry, onBytes: (n: number) => void = () => {}): void {
  const fd = openSync(path, "w", 0o600);
  try {
    if (entry.content.kind === "sparse") ftruncateSync(fd, entry.size);
    const fill = fillerFor(entry.content, entry.seed);
    for (const run of runsOf(entry)) {
      for (let off = run.offset; off < run.offset + run.length; off += CHUNK_BYTES) {
        const n = Math.min(CHUNK_BYTES, run.offset + run.length - off);
        if (entry.content.kind === "zero") {
          writeAll(fd, ZEROS.subarray(0, n), off);
        } else {
          const view = chunk.subarray(0, n);
          fill(off, view);
          writeAll(fd, view, off);
        }
        onBytes(n);
      }
    }
    fchmodSync(fd, entry.mode);
  } finally {
    closeSync(fd);
  }
}

/** The file's full byte stream (holes as zeros) in chunks; views are reused between
 *  iterations. For tests and verification; the writer never materializes holes. */
export function* entryChunks(entry: FileEntry, chunkBytes = CHUNK_BYTES): Generator<Uint8Array> {
  const fill = fillerFor(entry.content, entry.seed);
  const runs = runsOf(entry);
  const buf = new Uint8Array(Math.max(1, Math.min(chunkBytes, entry.size)));
  for (let off = 0; off < entry.size; off += chunkBytes) {
    const view = buf.subarray(0, Math.min(chunkBytes, entry.size - off));
    if (entry.content.kind !== "sparse") {
      fill(off, view);
    } else {
      view.fill(0);
      for (const r of runs) {
        const a = Math.max(off, r.offset);
        const b = Math.min(off + view.length, r.offset + r.length);
        if (a < b) fill(a, view.subarray(a - off, b - off));
      }
    }
    yield view;
  }
}
