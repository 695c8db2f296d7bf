// Feeds the walk of the sources to the receiver (FileList batches) and to the native sender
// (tx_file_add) a window at a time, so memory and queues stay bounded whatever the file count.
import { fileEntryBytes } from "../control/batch-bytes.ts";
import { WINDOW_FILES, type FileEntry } from "../control/messages.ts";
import type { EscpError } from "../errors/escp-error.ts";
import { MAX_PATH_BYTES, rejected } from "../fs/dest-path.ts";
import { ESCP_DIRS_BYTES, ESCP_DIRS_MAX, ESCP_LINKS_MAX as LINKS_MAX } from "../native/symbols.ts";
import { LinkSet, type FoundEntry, type WalkItem } from "../fs/discover.ts";

const BATCH_MAX_FILES = 2000;
/** Encoded bytes (batch-bytes.ts bounds) after which a FileList batch is closed. The last entry
 *  may overshoot by one entry (≤ 2 × 4,095-byte strings), far below ESCP_CTL_MAX. */
const BATCH_MAX_BYTES = 256 * 1024;
/** Small files a sender keeps handed to libescp without the sink's verdict (bundles): bounds
 *  what both sides hold for them (names here, records in libescp), whatever the file count. */
export const SMALL_WINDOW = 65_536;
/** Small files taken from the walk in one step (the loop stays responsive). */
const SMALL_STEP = 8192;

/** A file that travels in a bundle: the fino of the announced directory that holds it, and its
 *  name there. */
export interface SmallFile {
  dir: number;
  leaf: string;
  entry: FoundEntry;
}

export interface AnnounceSink {
  fileList(files: FileEntry[], last: boolean): void;
  file(fino: number, e: FoundEntry): void; // after the batch naming it was sent
  dir(fino: number, e: FoundEntry): void;
  link(fino: number, e: FoundEntry): void; // -a: a symlink or hard link (no data; awaits a verdict)
  small(files: SmallFile[]): void; // bundled files (no fino, not in the FileList), after the batch naming their directories
  problem(err: EscpError): void;
  notice(text: string): void; // something skipped that is not a failure (a dangling link in a tree)
  finished(): void; // no more files will be added
}

/** Names the receiver would refuse anyway (and that could not fit a control message) stop here. */
function overLong(e: FoundEntry): EscpError | undefined {
  if (Buffer.byteLength(e.name, "utf8") > MAX_PATH_BYTES) return rejected(e.name, `name is over ${MAX_PATH_BYTES} bytes`);
  if (e.dst !== undefined && Buffer.byteLength(e.dst, "utf8") > MAX_PATH_BYTES) {
    return rejected(e.dst, `destination is over ${MAX_PATH_BYTES} bytes`);
  }
  return undefined;
}

/** The wire entry; leader: the fino of an earlier name of the same inode (-a: a hard link). */
function toFileEntry(fino: number, e: FoundEntry, leader: number | undefined): FileEntry {
  const f: FileEntry = {
    fino,
    kind: leader === undefined ? e.kind : "hardlink",
    name: e.name,
    size: leader === undefined ? e.size : 0,
    mode: e.mode,
    mtimeSec: e.mtimeSec,
    mtimeNsec: e.mtimeNsec,
    atimeSec: e.atimeSec,
    atimeNsec: e.atimeNsec,
    ino: e.ino,
  };
  if (e.dst !== undefined) f.dst = e.dst;
  if (e.uid !== undefined) Object.assign(f, { uid: e.uid, gid: e.gid });
  if (e.nlink !== undefined) f.nlink = e.nlink;
  if (e.target !== undefined) f.target = e.target;
  if (leader !== undefined) f.linkTo = leader;
  else if (e.xattrs !== undefined) f.xattrs = e.xattrs; // a hard link shares its inode's
  if (e.stream) f.stream = true;
  if (e.range !== undefined && leader === undefined) f.range = e.range;
  return f;
}

export class Announcer {
  private fino = 0;
  private ended = false;
  private readonly links = new LinkSet();
  private linksFullSaid = false;
  /** Bundles: announced directories by name (at most ESCP_DIRS_MAX, their names taking at most
   *  half of ESCP_DIRS_BYTES, so a receiver remembers every one: files in later ones go one by one). */
  private readonly dirFinos = new Map<string, number>();
  private dirBytes = 0;

  /** bundleMax: files of at most this many bytes inside an announced directory are bundled (0 = none). */
  constructor(
    private readonly items: Iterator<WalkItem>,
    private readonly sink: AnnounceSink,
    private readonly bundleMax = 0,
  ) {}

  /** Files of this directory may travel in bundles, while the receiver's limits allow. */
  private bundleInto(name: string, fino: number): void {
    const bytes = Buffer.byteLength(name, "utf8") + 1;
    if (this.bundleMax === 0 || this.dirFinos.size >= ESCP_DIRS_MAX || this.dirBytes + bytes > ESCP_DIRS_BYTES / 2) return;
    this.dirFinos.set(name, fino);
    this.dirBytes += bytes;
  }

  /** The directory fino and leaf of a file that may travel in a bundle, else undefined. */
  private bundled(e: FoundEntry): SmallFile | undefined {
    if (
      e.kind !== "file" ||
      e.stream ||
      e.range !== undefined ||
      e.size > this.bundleMax ||
      e.dst !== undefined ||
      e.linkKey !== undefined ||
      e.xattrs !== undefined
    )
      return undefined;
    const slash = e.name.lastIndexOf("/");
    const dir = slash > 0 ? this.dirFinos.get(e.name.slice(0, slash)) : undefined;
    return dir === undefined ? undefined : { dir, leaf: e.name.slice(slash + 1), entry: e };
  }

  get done(): boolean {
    return this.ended;
  }

  /** Announce until `inFlight` files (or `smallInFlight` bundled ones) await verdicts or the
   * walk ends. Returns files added. */
  step(inFlight: number, smallInFlight = 0): number {
    if (this.ended || inFlight >= WINDOW_FILES || smallInFlight >= SMALL_WINDOW) return 0;
    const batch: FileEntry[] = [];
    const files: [number, FoundEntry][] = [];
    const links: [number, FoundEntry][] = []; // -a: symlinks and hard links (no data, a verdict each)
    const small: SmallFile[] = [];
    let bytes = 0;
    while (
      inFlight + files.length + links.length < WINDOW_FILES &&
      batch.length < BATCH_MAX_FILES &&
      bytes < BATCH_MAX_BYTES &&
      smallInFlight + small.length < SMALL_WINDOW &&
      small.length < SMALL_STEP
    ) {
      const next = this.items.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      const item = next.value;
      if (item.kind === "problem") this.sink.problem(item.error);
      if (item.kind === "notice") this.sink.notice(item.text);
      if (item.kind !== "entry") continue;
      const tooLong = overLong(item.entry);
      if (tooLong !== undefined) {
        this.sink.problem(tooLong);
        continue;
      }
      const packed = this.bundleMax > 0 ? this.bundled(item.entry) : undefined;
      if (packed !== undefined) {
        small.push(packed);
        continue;
      }
      const fino = ++this.fino;
      const leader = item.entry.kind === "file" ? this.links.leader(item.entry, fino) : undefined;
      this.sayLinksFull();
      const entry = toFileEntry(fino, item.entry, leader);
      batch.push(entry);
      bytes += fileEntryBytes(entry);
      if (entry.kind === "file") files.push([fino, item.entry]);
      else if (entry.kind === "dir") {
        this.sink.dir(fino, item.entry);
        this.bundleInto(item.entry.name, fino);
      } else links.push([fino, item.entry]);
    }
    if (batch.length > 0 || this.ended) this.sink.fileList(batch, this.ended);
    for (const [fino, e] of links) this.sink.link(fino, e);
    for (const [fino, e] of files) this.sink.file(fino, e);
    if (small.length > 0) this.sink.small(small);
    if (this.ended) this.sink.finished();
    return files.length + links.length + small.length;
  }

  private sayLinksFull(): void {
    if (!this.links.full || this.linksFullSaid) return;
    this.linksFullSaid = true;
    this.sink.notice(`more than ${LINKS_MAX} files with several links: further ones are copied as separate files`);
  }
}
