import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { EXIT_SKIPPED, judgeAudit, parseAllowList } from "./audit.ts";
import { statusOf } from "./checks.ts";

const TODAY = new Date("2026-06-01T12:00:00Z");

/** An `npm audit --json` report (version 2) with one advisory on ssh2 and one on a package
 *  that only depends on it (its `via` entry is the name, not an advisory). */
function report(): string {
  return JSON.stringify({
    auditReportVersion: 2,
    vulnerabilities: {
      ssh2: {
        name: "ssh2",
        severity: "high",
        via: [{ source: 1099999, name: "ssh2", title: "Prototype pollution", url: "https://github.com/advisories/GHSA-abcd-1234-wxyz", severity: "high" }],
      },
      "some-wrapper": { name: "some-wrapper", severity: "high", via: ["ssh2"] },
    },
    metadata: { vulnerabilities: { high: 2 } },
  });
}

const allow = (entries: object[]) => JSON.stringify({ allow: entries });

describe("release audit", () => {
  test("an advisory outside the allow list fails, naming its id and package", () => {
    const r = judgeAudit({ code: 1, stdout: report(), stderr: "" }, allow([]), TODAY);
    expect(r.status).toBe("fail");
    expect(r.status === "fail" && r.problems).toEqual([expect.stringContaining("GHSA-abcd-1234-wxyz ssh2 (high): Prototype pollution")]);
  });

  test("an allowed advisory passes until its entry expires", () => {
    const list = allow([{ id: "GHSA-abcd-1234-wxyz", package: "ssh2", reason: "escp never parses agent keys", expires: "2026-06-01" }]);
    const ok = judgeAudit({ code: 1, stdout: report(), stderr: "" }, list, TODAY);
    expect(ok.status).toBe("pass");
    expect(ok.status === "pass" && ok.allowed.map((a) => a.id)).toEqual(["GHSA-abcd-1234-wxyz"]);
    const later = judgeAudit({ code: 1, stdout: report(), stderr: "" }, list, new Date("2026-06-02T00:00:00Z"));
    expect(later.status === "fail" && later.problems[0]).toContain("expired on 2026-06-01");
  });

  test("an allow entry for another package does not cover the advisory", () => {
    const list = allow([{ id: "GHSA-abcd-1234-wxyz", package: "flatbuffers", reason: "r", expires: "2030-01-01" }]);
    expect(judgeAudit({ code: 1, stdout: report(), stderr: "" }, list, TODAY).status).toBe("fail");
  });

  test("a clean report passes", () => {
    const clean = JSON.stringify({ auditReportVersion: 2, vulnerabilities: {}, metadata: {} });
    expect(judgeAudit({ code: 0, stdout: clean, stderr: "" }, allow([]), TODAY)).toEqual({ status: "pass", advisories: [], allowed: [] });
  });

  test("an unreachable audit endpoint is a skip with the reason, never a pass", () => {
    const refused = JSON.stringify({ message: "405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk", statusCode: 405 });
    const r = judgeAudit({ code: 1, stdout: refused, stderr: "npm error audit endpoint returned an error\n" }, allow([]), TODAY);
    expect(r).toEqual({ status: "skip", reason: expect.stringContaining("405 Method Not Allowed") });
    const noJson = judgeAudit({ code: 1, stdout: "", stderr: "npm error network ENOTFOUND\n" }, allow([]), TODAY);
    expect(noJson).toEqual({ status: "skip", reason: expect.stringContaining("ENOTFOUND") });
    expect(statusOf(EXIT_SKIPPED)).toBe("skipped");
  });

  test("allow entries without a reason or a valid expiry are rejected", () => {
    const { problems } = parseAllowList(
      allow([
        { id: "GHSA-x", expires: "2030-01-01" },
        { id: "GHSA-y", reason: "r", expires: "soon" },
      ]),
    );
    expect(problems).toEqual(["allow[0] GHSA-x: no reason", "allow[1] GHSA-y: expires must be a YYYY-MM-DD date"]);
    expect(judgeAudit({ code: 0, stdout: report(), stderr: "" }, "{", TODAY).status).toBe("fail");
  });

  test("the committed allow list is valid", async () => {
    const text = await Bun.file(join(resolve(import.meta.dir, "..", ".."), ".ci", "audit-allow.json")).text();
    expect(parseAllowList(text).problems).toEqual([]);
  });
});
