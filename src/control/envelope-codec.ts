// Codec for the control Envelope (union Msg in schema/escp.fbs) ↔ the ControlMsg plain objects
// of messages.ts. Encoding validates first (E_INTERNAL); decoding verifies then validates (E_PROTOCOL).
import * as flatbuffers from "flatbuffers";
import { EscpError } from "../errors/escp-error.ts";
import { ESCP_CTL_MAX, ESCP_MAX_FILE_SIZE } from "../native/symbols.ts";
import { ENVELOPE, verifyBuffer } from "./fb-verify.ts";
import { ENTRY_KINDS, guarded, text, validateControl } from "./message-checks.ts";
import type { BundleResultMsg, ControlMsg, FileDoneMsg, FileEntry, FileResultMsg, ResumeDecisionMsg, ResumeOfferMsg } from "./messages.ts";
import { BundleFailure } from "./schema/generated/escp/control/bundle-failure.ts";
import { BundleResult } from "./schema/generated/escp/control/bundle-result.ts";
import { BundleResultBatch } from "./schema/generated/escp/control/bundle-result-batch.ts";
import { Envelope } from "./schema/generated/escp/control/envelope.ts";
import { ErrorMsg } from "./schema/generated/escp/control/error-msg.ts";
import { FileDone } from "./schema/generated/escp/control/file-done.ts";
import { FileDoneBatch } from "./schema/generated/escp/control/file-done-batch.ts";
import { FileResultBatch } from "./schema/generated/escp/control/file-result-batch.ts";
import { FileEntry as FbFileEntry } from "./schema/generated/escp/control/file-entry.ts";
import { FileKind } from "./schema/generated/escp/control/file-kind.ts";
import { FileList } from "./schema/generated/escp/control/file-list.ts";
import { FileResult } from "./schema/generated/escp/control/file-result.ts";
import { Keepalive } from "./schema/generated/escp/control/keepalive.ts";
import { Msg } from "./schema/generated/escp/control/msg.ts";
import { ProfileData } from "./schema/generated/escp/control/profile-data.ts";
import { ResumeDecision } from "./schema/generated/escp/control/resume-decision.ts";
import { ResumeDecisionBatch } from "./schema/generated/escp/control/resume-decision-batch.ts";
import { ResumeOffer } from "./schema/generated/escp/control/resume-offer.ts";
import { ResumeOfferBatch } from "./schema/generated/escp/control/resume-offer-batch.ts";
import { SessionDone } from "./schema/generated/escp/control/session-done.ts";
import { SessionDoneAck } from "./schema/generated/escp/control/session-done-ack.ts";

/** Largest control message sent or accepted: the native CTL frame limit (escp.h ESCP_CTL_MAX). */
export const MAX_CONTROL_BYTES = ESCP_CTL_MAX;
const UTF8 = flatbuffers.Encoding.UTF8_BYTES;
type B = flatbuffers.Builder;

function str(b: B, s: string): flatbuffers.Offset {
  return s === "" ? 0 : b.createString(s);
}

const KIND_CODE = { file: FileKind.File, dir: FileKind.Dir, symlink: FileKind.Symlink, hardlink: FileKind.HardLink } as const;

function encodeEntry(b: B, f: FileEntry): flatbuffers.Offset {
  const name = b.createString(f.name);
  const dst = f.dst === undefined ? 0 : b.createString(f.dst);
  const target = f.target === undefined ? 0 : b.createString(f.target);
  const xattrs = f.xattrs === undefined || f.xattrs.length === 0 ? 0 : FbFileEntry.createXattrsVector(b, f.xattrs);
  FbFileEntry.startFileEntry(b);
  FbFileEntry.addFino(b, BigInt(f.fino));
  FbFileEntry.addKind(b, KIND_CODE[f.kind]);
  FbFileEntry.addName(b, name);
  FbFileEntry.addSize(b, BigInt(f.size));
  FbFileEntry.addMode(b, f.mode);
  FbFileEntry.addMtimeSec(b, BigInt(f.mtimeSec));
  FbFileEntry.addMtimeNsec(b, f.mtimeNsec);
  FbFileEntry.addAtimeSec(b, BigInt(f.atimeSec));
  FbFileEntry.addAtimeNsec(b, f.atimeNsec);
  if (dst !== 0) FbFileEntry.addDst(b, dst);
  if (f.ino !== 0) FbFileEntry.addIno(b, BigInt(f.ino));
  if (f.uid !== undefined) FbFileEntry.addUid(b, f.uid);
  if (f.gid !== undefined) FbFileEntry.addGid(b, f.gid);
  if (f.nlink !== undefined) FbFileEntry.addNlink(b, f.nlink);
  if (target !== 0) FbFileEntry.addTarget(b, target);
  if (f.linkTo !== undefined) FbFileEntry.addLinkTo(b, BigInt(f.linkTo));
  if (xattrs !== 0) FbFileEntry.addXattrs(b, xattrs);
  if (f.stream === true) FbFileEntry.addStream(b, true);
  if (f.range !== undefined) {
    FbFileEntry.addRangeOffset(b, BigInt(f.range.offset));
    FbFileEntry.addRangeLength(b, BigInt(f.range.length));
  }
  return FbFileEntry.endFileEntry(b);
}

function encodeDone(b: B, m: FileDoneMsg): flatbuffers.Offset {
  const digest = FileDone.createDigestVector(b, m.digest);
  return FileDone.createFileDone(b, BigInt(m.fino), BigInt(m.blocks), BigInt(m.bytes), str(b, m.code), m.errno, str(b, m.message), digest);
}

export function encodeResult(b: B, m: FileResultMsg): flatbuffers.Offset {
  const digest = FileResult.createDigestVector(b, m.digest);
  const fileDigest = m.fileDigest !== undefined && m.fileDigest.length > 0 ? FileResult.createFileDigestVector(b, m.fileDigest) : 0;
  const subtrees = m.subtrees !== undefined && m.subtrees.length > 0 ? FileResult.createSubtreesVector(b, m.subtrees) : 0;
  return FileResult.createFileResult(
    b,
    BigInt(m.fino),
    str(b, m.code),
    m.errno,
    str(b, m.message),
    BigInt(m.bytes),
    digest,
    str(b, m.path),
    BigInt(m.resumed),
    m.committed === true,
    fileDigest,
    subtrees,
  );
}

function encodeOffer(b: B, m: ResumeOfferMsg): flatbuffers.Offset {
  const held = m.held.length > 0 ? ResumeOffer.createHeldVector(b, m.held) : 0;
  return ResumeOffer.createResumeOffer(b, BigInt(m.fino), str(b, m.code), str(b, m.message), held, str(b, m.notice));
}

function encodeDecision(b: B, m: ResumeDecisionMsg): flatbuffers.Offset {
  return ResumeDecision.createResumeDecision(b, BigInt(m.fino), m.accept, str(b, m.notice));
}

function encodeBundleResult(b: B, m: BundleResultMsg): flatbuffers.Offset {
  const digests = m.digests.length > 0 ? BundleResult.createDigestsVector(b, m.digests) : 0;
  const failures =
    m.failures.length > 0
      ? BundleResult.createFailuresVector(
          b,
          m.failures.map((f) => BundleFailure.createBundleFailure(b, f.index, str(b, f.code), f.errno, str(b, f.message))),
        )
      : 0;
  return BundleResult.createBundleResult(b, BigInt(m.bundle), m.count, digests, failures);
}

function encodeBody(b: B, m: ControlMsg): [Msg, flatbuffers.Offset] {
  switch (m.type) {
    case "bundleResults":
      return [
        Msg.BundleResultBatch,
        BundleResultBatch.createBundleResultBatch(
          b,
          BundleResultBatch.createItemsVector(
            b,
            m.items.map((i) => encodeBundleResult(b, i)),
          ),
        ),
      ];
    case "fileDones":
      return [
        Msg.FileDoneBatch,
        FileDoneBatch.createFileDoneBatch(
          b,
          FileDoneBatch.createItemsVector(
            b,
            m.items.map((i) => encodeDone(b, i)),
          ),
        ),
      ];
    case "fileResults":
      return [
        Msg.FileResultBatch,
        FileResultBatch.createFileResultBatch(
          b,
          FileResultBatch.createItemsVector(
            b,
            m.items.map((i) => encodeResult(b, i)),
          ),
        ),
      ];
    case "resumeOffers":
      return [
        Msg.ResumeOfferBatch,
        ResumeOfferBatch.createResumeOfferBatch(
          b,
          ResumeOfferBatch.createItemsVector(
            b,
            m.items.map((i) => encodeOffer(b, i)),
          ),
        ),
      ];
    case "resumeDecisions":
      return [
        Msg.ResumeDecisionBatch,
        ResumeDecisionBatch.createResumeDecisionBatch(
          b,
          ResumeDecisionBatch.createItemsVector(
            b,
            m.items.map((i) => encodeDecision(b, i)),
          ),
        ),
      ];
    case "fileList": {
      const files = FileList.createFilesVector(
        b,
        m.files.map((f) => encodeEntry(b, f)),
      );
      return [Msg.FileList, FileList.createFileList(b, files, m.last)];
    }
    case "fileDone":
      return [Msg.FileDone, encodeDone(b, m)];
    case "fileResult":
      return [Msg.FileResult, encodeResult(b, m)];
    case "error":
      return [Msg.ErrorMsg, ErrorMsg.createErrorMsg(b, str(b, m.code), str(b, m.message), m.fatal, BigInt(m.fino), str(b, m.path))];
    case "sessionDone":
      return [Msg.SessionDone, SessionDone.createSessionDone(b, BigInt(m.files), BigInt(m.bytes))];
    case "sessionDoneAck":
      return [Msg.SessionDoneAck, SessionDoneAck.createSessionDoneAck(b, BigInt(m.filesOk), BigInt(m.filesFailed))];
    case "keepalive":
      return [Msg.Keepalive, Keepalive.createKeepalive(b)];
    case "profileData": {
      const totals = ProfileData.createTotalsVector(b, m.totals);
      const spans = ProfileData.createSpansVector(b, m.spans);
      return [
        Msg.ProfileData,
        ProfileData.createProfileData(b, str(b, m.host), m.streams, BigInt(m.startNs), BigInt(m.endNs), BigInt(m.dropped), totals, spans, m.last),
      ];
    }
  }
}

export function encodeControl(m: ControlMsg): Uint8Array {
  validateControl(m, "E_INTERNAL");
  const b = new flatbuffers.Builder(256);
  const [type, body] = encodeBody(b, m);
  b.finish(Envelope.createEnvelope(b, type, body), "ESC1");
  return b.asUint8Array(); // the builder is ours alone: its bytes need no copy
}

function missing(what: string): never {
  throw new EscpError("E_PROTOCOL", `received control message: ${what} is missing`);
}

function decodeEntry(list: FileList, i: number): FileEntry {
  const f = list.files(i) ?? missing(`files[${i}]`);
  const kind = ENTRY_KINDS[f.kind()];
  if (kind === undefined) {
    throw new EscpError("E_PROTOCOL", `received control message fileList: files[${i}].kind has unknown value ${f.kind()}`);
  }
  // Checked before it becomes a number: past 2^53 the number is rounded, and the limit goes unsaid.
  const size = f.size();
  if (size > BigInt(ESCP_MAX_FILE_SIZE)) {
    throw new EscpError("E_PROTOCOL", `received control message fileList: files[${i}].size is ${size} bytes, over the ${ESCP_MAX_FILE_SIZE}-byte limit`);
  }
  const out: FileEntry = {
    fino: Number(f.fino()),
    kind,
    name: text(f.name(UTF8), `files[${i}].name`),
    size: Number(size),
    mode: f.mode(),
    mtimeSec: Number(f.mtimeSec()),
    mtimeNsec: f.mtimeNsec(),
    atimeSec: Number(f.atimeSec()),
    atimeNsec: f.atimeNsec(),
    ino: safe(f.ino(), `files[${i}].ino`),
  };
  const dst = f.dst(UTF8);
  if (dst !== null) out.dst = text(dst, `files[${i}].dst`);
  if (kind === "symlink") out.target = text(f.target(UTF8), `files[${i}].target`);
  if (kind === "hardlink") out.linkTo = safe(f.linkTo(), `files[${i}].linkTo`);
  if (f.uid() !== 0) out.uid = f.uid();
  if (f.gid() !== 0) out.gid = f.gid();
  if (f.nlink() !== 0) out.nlink = f.nlink();
  const xattrs = f.xattrsArray();
  if (xattrs !== null && xattrs.length > 0) out.xattrs = xattrs.slice();
  if (f.stream()) out.stream = true;
  const rlen = safe(f.rangeLength(), `files[${i}].rangeLength`);
  if (rlen > 0) out.range = { offset: safe(f.rangeOffset(), `files[${i}].rangeOffset`), length: rlen };
  return out;
}

/** A u64 that must fit a JS number exactly (else E_PROTOCOL, never a rounded value). */
function safe(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EscpError("E_PROTOCOL", `received control message: ${field} is ${v}, over 2^53 - 1`);
  return Number(v);
}

function bytes(arr: Uint8Array | null): Uint8Array {
  return arr === null ? new Uint8Array(0) : arr.slice();
}

function decodeDone(t: FileDone): FileDoneMsg {
  return {
    type: "fileDone",
    fino: Number(t.fino()),
    blocks: Number(t.blocks()),
    bytes: Number(t.bytes()),
    code: text(t.code(UTF8), "code"),
    errno: t.errno(),
    message: text(t.message(UTF8), "message"),
    digest: bytes(t.digestArray()),
  };
}

export function decodeResult(t: FileResult): FileResultMsg {
  return {
    type: "fileResult",
    fino: Number(t.fino()),
    code: text(t.code(UTF8), "code"),
    errno: t.errno(),
    message: text(t.message(UTF8), "message"),
    bytes: Number(t.bytes()),
    digest: bytes(t.digestArray()),
    path: text(t.path(UTF8), "path"),
    resumed: safe(t.resumed(), "resumed"),
    ...(t.committed() ? { committed: true } : {}),
    ...(t.fileDigestLength() > 0 ? { fileDigest: bytes(t.fileDigestArray()) } : {}),
    ...(t.subtreesLength() > 0 ? { subtrees: bytes(t.subtreesArray()) } : {}),
  };
}

function decodeOffer(t: ResumeOffer): ResumeOfferMsg {
  return {
    type: "resumeOffer",
    fino: Number(t.fino()),
    code: text(t.code(UTF8), "code"),
    message: text(t.message(UTF8), "message"),
    held: bytes(t.heldArray()),
    notice: text(t.notice(UTF8), "notice"),
  };
}

function decodeDecision(t: ResumeDecision): ResumeDecisionMsg {
  return { type: "resumeDecision", fino: Number(t.fino()), accept: t.accept(), notice: text(t.notice(UTF8), "notice") };
}

function decodeBundleResult(t: BundleResult): BundleResultMsg {
  const failures = [];
  for (let i = 0; i < t.failuresLength(); i++) {
    const f = t.failures(i) ?? missing(`failures[${i}]`);
    failures.push({ index: f.index(), code: text(f.code(UTF8), "code"), errno: f.errno(), message: text(f.message(UTF8), "message") });
  }
  return { type: "bundleResult", bundle: safe(t.bundle(), "bundle"), count: t.count(), digests: bytes(t.digestsArray()), failures };
}

function decodeBody(env: Envelope): ControlMsg {
  const type = env.msgType();
  switch (type) {
    case Msg.BundleResultBatch: {
      const t: BundleResultBatch = env.msg(new BundleResultBatch()) ?? missing("bundleResults body");
      const items: BundleResultMsg[] = [];
      for (let i = 0; i < t.itemsLength(); i++) items.push(decodeBundleResult(t.items(i) ?? missing(`items[${i}]`)));
      return { type: "bundleResults", items };
    }
    case Msg.FileDoneBatch: {
      const t: FileDoneBatch = env.msg(new FileDoneBatch()) ?? missing("fileDones body");
      const items: FileDoneMsg[] = [];
      for (let i = 0; i < t.itemsLength(); i++) items.push(decodeDone(t.items(i) ?? missing(`items[${i}]`)));
      return { type: "fileDones", items };
    }
    case Msg.FileResultBatch: {
      const t: FileResultBatch = env.msg(new FileResultBatch()) ?? missing("fileResults body");
      const items: FileResultMsg[] = [];
      for (let i = 0; i < t.itemsLength(); i++) items.push(decodeResult(t.items(i) ?? missing(`items[${i}]`)));
      return { type: "fileResults", items };
    }
    case Msg.ResumeOfferBatch: {
      const t: ResumeOfferBatch = env.msg(new ResumeOfferBatch()) ?? missing("resumeOffers body");
      const items: ResumeOfferMsg[] = [];
      for (let i = 0; i < t.itemsLength(); i++) items.push(decodeOffer(t.items(i) ?? missing(`items[${i}]`)));
      return { type: "resumeOffers", items };
    }
    case Msg.ResumeDecisionBatch: {
      const t: ResumeDecisionBatch = env.msg(new ResumeDecisionBatch()) ?? missing("resumeDecisions body");
      const items: ResumeDecisionMsg[] = [];
      for (let i = 0; i < t.itemsLength(); i++) items.push(decodeDecision(t.items(i) ?? missing(`items[${i}]`)));
      return { type: "resumeDecisions", items };
    }
    case Msg.FileList: {
      const t: FileList = env.msg(new FileList()) ?? missing("fileList body");
      const files: FileEntry[] = [];
      for (let i = 0; i < t.filesLength(); i++) files.push(decodeEntry(t, i));
      return { type: "fileList", files, last: t.last() };
    }
    case Msg.FileDone:
      return decodeDone(env.msg(new FileDone()) ?? missing("fileDone body"));
    case Msg.FileResult:
      return decodeResult(env.msg(new FileResult()) ?? missing("fileResult body"));
    case Msg.ErrorMsg: {
      const t: ErrorMsg = env.msg(new ErrorMsg()) ?? missing("error body");
      return {
        type: "error",
        code: text(t.code(UTF8), "code"),
        message: text(t.message(UTF8), "message"),
        fatal: t.fatal(),
        fino: Number(t.fino()),
        path: text(t.path(UTF8), "path"),
      };
    }
    case Msg.SessionDone: {
      const t: SessionDone = env.msg(new SessionDone()) ?? missing("sessionDone body");
      return { type: "sessionDone", files: Number(t.files()), bytes: Number(t.bytes()) };
    }
    case Msg.SessionDoneAck: {
      const t: SessionDoneAck = env.msg(new SessionDoneAck()) ?? missing("sessionDoneAck body");
      return { type: "sessionDoneAck", filesOk: Number(t.filesOk()), filesFailed: Number(t.filesFailed()) };
    }
    case Msg.Keepalive:
      env.msg(new Keepalive()) ?? missing("keepalive body");
      return { type: "keepalive" };
    case Msg.ProfileData: {
      const t: ProfileData = env.msg(new ProfileData()) ?? missing("profileData body");
      return {
        type: "profileData",
        host: text(t.host(UTF8), "host"),
        streams: t.streams(),
        startNs: Number(t.startNs()),
        endNs: Number(t.endNs()),
        dropped: Number(t.dropped()),
        totals: bytes(t.totalsArray()),
        spans: bytes(t.spansArray()),
        last: t.last(),
      };
    }
    default:
      throw new EscpError("E_PROTOCOL", `received control message with unknown type ${type}`);
  }
}

export function decodeControl(buf: Uint8Array): ControlMsg {
  return guarded("control message", () => {
    verifyBuffer(buf, ENVELOPE, MAX_CONTROL_BYTES);
    const m = decodeBody(Envelope.getRootAsEnvelope(new flatbuffers.ByteBuffer(buf)));
    validateControl(m, "E_PROTOCOL");
    return m;
  });
}
