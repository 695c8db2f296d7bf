// After a --profile transfer: assemble both sides' records, write the trace + HTML report,
// and (with -v) print the one-line verdict.
import type { Options } from "../config/options.ts";
import { term } from "../cli/progress.ts";
import { log } from "../log/logger.ts";
import { PROFILE_STAGES } from "../control/message-checks.ts";
import { decodeSpans, type Profile, type SideProfile, type StageId, type StageTotal } from "../profile/types.ts";
import { writeProfile } from "../profile/write.ts";
import type { SideRecord } from "./profile-collect.ts";

export async function writeTransferProfile(
  o: Options,
  sides: { sender: SideRecord; receiver?: SideRecord },
  run: { bytes: number; files: number; wallS: number },
): Promise<void> {
  const path = o.profile;
  if (path === undefined) return;
  const p: Profile = {
    version: 1,
    tool: "escp",
    startedAt: new Date(Date.now() - run.wallS * 1000).toISOString(),
    command: ["escp", ...process.argv.slice(2)].join(" "),
    bytes: run.bytes,
    files: run.files,
    wallS: run.wallS,
    sides: [sideProfile("sender", sides.sender), ...(sides.receiver ? [sideProfile("receiver", sides.receiver)] : [])],
  };
  if (!sides.receiver) log.warn("profile: the receiver sent no profile data; the report covers the sender only");
  const out = await writeProfile(path, p);
  log.debug(`profile written`, { trace: out.tracePath, html: out.htmlPath });
  if (o.verbose) term.info(`escp: ${out.verdict.text} (profile: ${out.tracePath}, ${out.htmlPath})`);
}

/** Exact totals bytes → StageTotal rows (zero rows left out). */
export function totalsOf(totals: Uint8Array, streams: number): StageTotal[] {
  const v = new DataView(totals.buffer, totals.byteOffset, totals.byteLength);
  const out: StageTotal[] = [];
  for (let s = 0; s <= streams; s++) {
    for (let g = 0; g < PROFILE_STAGES; g++) {
      const at = (s * PROFILE_STAGES + g) * 3 * 8;
      if (at + 24 > totals.length) return out;
      const count = Number(v.getBigUint64(at + 16, true));
      if (count === 0) continue;
      out.push({ stream: s, stage: g as StageId, ns: Number(v.getBigUint64(at, true)), bytes: Number(v.getBigUint64(at + 8, true)), count });
    }
  }
  return out;
}

export function sideProfile(side: "sender" | "receiver", r: SideRecord): SideProfile {
  return {
    side,
    host: r.host,
    streams: r.streams,
    startNs: r.startNs,
    endNs: r.endNs,
    spans: decodeSpans(r.spans),
    dropped: r.dropped,
    totals: totalsOf(r.totals, r.streams),
  };
}
