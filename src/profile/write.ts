// Writes a profile to disk: the Chrome trace JSON at the given path and the HTML report beside
// it (extension replaced by .html), each to a temp name then renamed, so a reader never sees
// half a file. Failures throw EscpError E_WRITE naming the path.
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import { chromeTrace } from "./chrome-trace.ts";
import { htmlReport } from "./html-report.ts";
import type { Profile, Verdict } from "./types.ts";
import { verdict as computeVerdict } from "./verdict.ts";

export interface WrittenProfile {
  tracePath: string;
  htmlPath: string;
  verdict: Verdict;
}

/** "x.json" → "x.html", "x" → "x.html", ".x" → ".x.html"; "x.html" → "x.report.html" (never the trace's own name). */
export function htmlPathFor(tracePath: string): string {
  const base = basename(tracePath);
  const ext = extname(base);
  if (ext.toLowerCase() === ".html") return join(dirname(tracePath), `${base.slice(0, -ext.length)}.report.html`);
  const stem = ext ? base.slice(0, -ext.length) : base;
  return join(dirname(tracePath), `${stem}.html`);
}

function tempFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
}

function writeError(path: string, e: unknown): EscpError {
  const errno = (e as { code?: string } | null)?.code;
  return new EscpError("E_WRITE", `cannot write profile ${path}: ${describeSysError(e)}`, { path, errno, cause: e });
}

async function writeTemp(path: string, text: string): Promise<string> {
  const tmp = tempFor(path);
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    return tmp;
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(path, e);
  }
}

async function commit(tmp: string, path: string): Promise<void> {
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(path, e);
  }
}

export async function writeProfile(path: string, p: Profile): Promise<WrittenProfile> {
  if (path === "") throw new EscpError("E_USAGE", "--profile needs a file name");
  const v = computeVerdict(p);
  const htmlPath = htmlPathFor(path);
  // Build both texts first: a failure here leaves nothing behind.
  const traceText = JSON.stringify(chromeTrace(p, v));
  const htmlText = htmlReport(p, v);
  const traceTmp = await writeTemp(path, traceText);
  let htmlTmp: string;
  try {
    htmlTmp = await writeTemp(htmlPath, htmlText);
  } catch (e) {
    await rm(traceTmp, { force: true }).catch(() => undefined);
    throw e;
  }
  try {
    await commit(traceTmp, path);
  } catch (e) {
    await rm(htmlTmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await commit(htmlTmp, htmlPath);
  return { tracePath: path, htmlPath, verdict: v };
}
