// What the data roles are given: a plain plan (what to send, or where to put it) and the
// context of the session they run in. Neither is the CLI config nor a wire message, so the
// same role runs on the initiator (push: source; pull: sink) or on a server.
import { BUNDLE_MINOR, type ControlMsg, type FileEntry } from "../control/messages.ts";
import { EscpError } from "../errors/escp-error.ts";
import { isErrorCode } from "../errors/codes.ts";
import type { SourceSpec, WalkMode } from "../fs/discover.ts";
import type { DestRequest } from "../fs/dest-path.ts";
import type { NativeSession } from "../native/session.ts";
import type { Reporter } from "./reporter.ts";
import type { StreamFeed } from "./stream-feed.ts";

export interface SourcePlan {
  specs: SourceSpec[];
  walk: WalkMode;
  checksum: boolean;
  timeoutMs: number;
  /** Bytes the walk's totals pass found (for the mid-transfer fault point). */
  totalBytes: number;
  /** Problems found before the walk (e.g. a pattern that matched nothing), reported first. */
  problems?: EscpError[];
  /** Resume offers are exchanged (resumeOffers()): every file of more than one block waits
   * for the sink's ResumeOffer before it is queued. */
  resume?: ResumePlan;
  /** Bundles (both peers 2.6): files of at most this many bytes inside announced directories
   * travel packed in BUNDLE frames; 0 or absent = none. */
  bundleMax?: number;
  /** Small files are handed to the kernel's read-ahead as the walk lists them (the sender's
   * engine reads them: posix), at most READ_AHEAD_BYTES beyond what was sent, after the bytes
   * the totals pass read ahead (this many; absent: no read-ahead). */
  readAhead?: number;
  /** A source is standard input (a stream: no stall watchdog, the producer sets the pace). */
  stdin?: boolean;
  /** The library's send(): that stream's bytes come from this in-process feed, not fd 0. */
  feed?: StreamFeed;
}

export interface ResumePlan {
  blockSize: number;
}

/** Does a file of `size` bytes get a ResumeOffer (more than one block, offers exchanged)?
 * Both roles ask this; they must agree on every file. */
export function awaitsOffer(resume: ResumePlan | undefined, size: number): boolean {
  return resume !== undefined && size > resume.blockSize;
}

export interface SinkPlan {
  /** Where the names land: scp's naming rules over the sources the source side reported. */
  dest: DestRequest;
  preserve: boolean;
  /** -a: symbolic links and hard links are taken (else such an entry is E_PROTOCOL). */
  archive?: boolean;
  /** --xattrs: entries may carry extended attributes (else E_PROTOCOL). */
  xattrs?: boolean;
  checksum: boolean;
  timeoutMs: number;
  /** A pull: every announced entry must belong to what was asked for (the hostile-server
   * defence); null = accept (the entry then still passes the destination's own checks). */
  guard?: (e: FileEntry) => EscpError | null;
  /** Put each verified file's destination-relative name in its FileResult (SessionInit.wantPaths). */
  wantPaths?: boolean;
  /** The top-level names the source reported (a pull, -3): one never announced by the close
   * is a failure of its own, unless the source named a problem (a file that vanished). */
  expectTop?: string[];
  /** Resume offers are exchanged: the sink makes one for every file of more than one block. */
  resume?: ResumePlan;
  /** Bundles are taken (SessionInit.bundleMax > 0 and this side speaks 2.6). */
  bundle?: boolean;
  /** `escp host:file -`: the one file goes to standard output, in order, instead of a file. */
  stdout?: boolean;
  /** With stdout: this descriptor instead of 1 (the library's receive(): a pipe it reads). */
  streamFd?: number;
}

/** How the source side walks: -r, and what -a and --xattrs add (from the options or a SessionInit). */
export function walkMode(x: { recursive: boolean; archive: boolean; xattrs: boolean }): WalkMode {
  return { recursive: x.recursive || x.archive, archive: x.archive, xattrs: x.xattrs };
}

/** Do both sides exchange resume offers? Only when the initiator asked to resume (level 2),
 * with checksums (the held blocks' CVs are what makes them trustworthy), and both sides speak
 * protocol 2.2 or later. */
export function resumeOffers(level: number, checksum: boolean, peerMinor: number): boolean {
  return level === 2 && checksum && peerMinor >= 2;
}

/** The largest file the source puts in a bundle (0 = none): what was asked (SessionInit.bundleMax),
 * if the peer speaks 2.6, the source really reads files (not the dummy engine) and a bundle can
 * hold at least two of them. */
export function bundleLimit(asked: number, peerMinor: number, blockSize: number, ioEngine: "posix" | "dummy"): number {
  if (asked <= 0 || peerMinor < BUNDLE_MINOR || ioEngine !== "posix") return 0;
  return Math.min(asked, blockSize / 2);
}

/** Whether a receiving peer of this minor version takes ZERO frames for holes (minor ≥ 4). */
export function sendsHoles(peerMinor: number): boolean {
  return peerMinor >= 4;
}

/** Whether a peer of this minor version re-establishes data streams (ACK frames, minor ≥ 3). */
export function reconnects(peerMinor: number): boolean {
  return peerMinor >= 3;
}

/** The receiver's native resume level: 2 only with offers; 1 still journals (a later run may
 * resume) but replaces an earlier partial; 0 without checksums. */
export function nativeResumeLevel(level: number, checksum: boolean, peerMinor: number): 0 | 1 | 2 {
  if (!checksum || level === 0) return 0;
  return resumeOffers(level, checksum, peerMinor) ? 2 : 1;
}

export type ProfileMsg = Extract<ControlMsg, { type: "profileData" }>;

export interface RoleContext {
  native: NativeSession;
  /** The other side, for messages ("host", "local receiver"). */
  peer: string;
  /** Prefix for names on the other side in messages ("host:" or ""). */
  peerPrefix: string;
  reporter: Reporter;
  /** This side listened: nothing may be sent before the native "streamsUp" event. */
  listening?: boolean;
  /** The source runs on a server (a pull): its own problems go to the initiator too. */
  problemsToPeer?: boolean;
  /** ... and so do its notices (an initiator of protocol 2.4 or later takes them). */
  noticesToPeer?: boolean;
  /** Called every pass of the role's loop (the initiator's progress bar). */
  tick?: () => void;
  /** Bytes the sink holds from an earlier run and will not be sent (progress counts them). */
  held?: (bytes: number) => void;
  /** The other side's profile parts (the initiator collects them); absent = refuse them. */
  onProfile?: (m: ProfileMsg) => void;
  /** Sent just before this role's closing message (a server's own profile parts). */
  closingMessages?: () => ControlMsg[];
}

/** A directory the sink could not create or finish, as the error the source reports. */
export function dirFailure(code: string, message: string, path: string): EscpError {
  return new EscpError(isErrorCode(code) ? code : "E_WRITE", message, { path });
}
