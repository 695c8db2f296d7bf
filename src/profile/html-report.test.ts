// Tests for the HTML report and its timeline: content, escaping of hostile text, no external
// assets, the thinning bound on rects, and the size of a 200,000-span report.
import { describe, expect, test } from "bun:test";
import { htmlReport } from "./html-report.ts";
import { escapeHtml, scriptJson } from "./report-format.ts";
import { mkProfile, mkSide } from "./test-profiles.fixture.ts";
import { STAGE } from "./stages.ts";
import { timeline } from "./timeline.ts";
import { tickStepS } from "./timeline-svg.ts";
import { verdict } from "./verdict.ts";

const rectCount = (html: string): number => (html.match(/<rect x=/g) ?? []).length;

describe("htmlReport", () => {
  const p = mkProfile([mkSide("sender", { read: 0.9, send: 0.05 }, { host: "alpha" }), mkSide("receiver", { recv: 0.9, write: 0.05 }, { host: "beta" })]);
  const v = verdict(p);
  const html = htmlReport(p, v);

  test("a complete document with the verdict, tables, timeline and legend", () => {
    expect(html).toStartWith("<!doctype html>");
    expect(html).toEndWith("</html>\n");
    expect(html).toContain(escapeHtml(v.text));
    expect(html).toContain("bound by disk read on the sender: 90 % of stream time waiting on pread");
    expect(html).toContain("sender — alpha");
    expect(html).toContain("receiver — beta");
    expect(html).toContain('<svg id="tl"');
    expect(html).toContain("stream 4");
    expect(html).toContain("90.0 %");
    for (const label of ["disk read", "seal", "open", "disk write", "idle", "meta"]) expect(html).toContain(`>${label} <`);
  });

  test("self-contained: no external stylesheet, script, image or font", () => {
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<script[^>]*\bsrc=/i);
    expect(html).not.toMatch(/<img\b/i);
    expect(html).not.toMatch(/url\(/i);
    expect(html).not.toContain("@import");
  });

  test("a hostile command line and host name are escaped", () => {
    const evil = `escp "a<b>&c'.txt" </script><script>alert(1)</script> host:/tmp/`;
    const q = mkProfile([mkSide("sender", { read: 0.5 }, { host: `<img src=x onerror=alert(2)>` })], evil);
    const out = htmlReport(q, verdict(q));
    expect(out).not.toContain("<script>alert(1)");
    expect(out).not.toContain("<img src=x");
    expect(out).toContain("escp &quot;a&lt;b&gt;&amp;c&#39;.txt&quot; &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; host:/tmp/");
    expect(out.match(/<script>/g)).toHaveLength(1);
    expect(out).toContain("No receiver profile");
  });

  test("an empty profile still renders", () => {
    const q = mkProfile([]);
    const out = htmlReport(q, verdict(q));
    expect(out).toContain("no clear bottleneck");
    expect(out).toContain("no spans recorded");
  });

  test("200,000 spans on 64 streams per side stay under 20,000 rects and 1.5 MB", () => {
    const mix = { read: 0.3, hash: 0.1, seal: 0.1, send: 0.4 };
    const big = mkProfile([
      mkSide("sender", mix, { streams: 64, blocks: 390, activeNs: 30e9, jitter: 0.5, seed: 3 }),
      mkSide("receiver", { recv: 0.5, open: 0.2, write: 0.2 }, { streams: 64, blocks: 520, activeNs: 30e9, jitter: 0.5, seed: 4 }),
    ]);
    const spans = big.sides.reduce((n, s) => n + s.spans.length, 0);
    expect(spans).toBeGreaterThanOrEqual(199_000);
    const started = performance.now();
    const out = htmlReport(big, verdict(big));
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(rectCount(out)).toBeLessThanOrEqual(20_000);
    expect(out.length).toBeLessThan(1.5e6);
  });
});

describe("timeline thinning", () => {
  test("long spans stay one rect each; adjacent equal columns merge", () => {
    const side = mkSide("sender", { read: 0.5, send: 0.5 }, { streams: 1, blocks: 1, activeNs: 1e9 });
    const t = timeline(mkProfile([side]), { widthPx: 1000 });
    expect(t.lanes).toHaveLength(1);
    expect(t.lanes[0]?.runs).toEqual([
      { x: 0, w: 500, stage: STAGE.read },
      { x: 500, w: 500, stage: STAGE.send },
    ]);
    expect(t.binPx).toBe(1);
  });

  test("sub-pixel spans become the column's dominant stage; gaps stay empty", () => {
    const side = mkSide("sender", { read: 0.3, hash: 0.1, send: 0.2 }, { streams: 1, blocks: 10_000, activeNs: 1e9 });
    const t = timeline(mkProfile([side]), { widthPx: 500 });
    // Each column holds ~20 tiny blocks: read dominates; 40 % uncovered never wins.
    expect(t.lanes[0]?.runs).toEqual([{ x: 0, w: 300, stage: STAGE.read }]);
  });

  test("the chart coarsens until it fits maxRects", () => {
    const side = mkSide("sender", { read: 0.5, send: 0.5 }, { streams: 4, blocks: 500, activeNs: 1e9 });
    const t = timeline(mkProfile([side]), { widthPx: 1000, maxRects: 500 });
    expect(t.rects).toBeLessThanOrEqual(500);
    expect(t.binPx).toBeGreaterThan(1);
    for (const lane of t.lanes) for (const r of lane.runs) expect(r.x + r.w).toBeLessThanOrEqual(1000);
  });

  test("a control lane appears when stream 0 has spans; streams without spans still get a lane", () => {
    const side = mkSide("receiver", {}, { streams: 2 });
    side.spans.push({ t0Ns: side.startNs, durNs: side.endNs - side.startNs, bytes: 0, stream: 0, stage: STAGE.meta });
    const t = timeline(mkProfile([side]), { widthPx: 100 });
    expect(t.lanes.map((l) => l.stream)).toEqual([0, 1, 2]);
    expect(t.lanes[0]?.runs).toEqual([{ x: 0, w: 100, stage: STAGE.meta }]);
  });
});

describe("report helpers", () => {
  test("tick steps are 1, 2 or 5 × 10^k", () => {
    expect(tickStepS(10)).toBe(2);
    expect(tickStepS(0.35)).toBe(0.05);
    expect(tickStepS(3600)).toBe(500);
    expect(tickStepS(0)).toBe(1);
  });

  test("script JSON cannot close the script element", () => {
    expect(scriptJson(["</script>", "<!--"])).toBe('["\\u003c/script>","\\u003c!--"]');
  });
});

describe("time axis", () => {
  test("tick labels use the step's precision", () => {
    const side = mkSide("sender", { read: 0.5 }, { streams: 1, activeNs: 30e9 });
    const out = htmlReport(mkProfile([side]), verdict(mkProfile([side])));
    const labels = [...out.matchAll(/<text x="[\d.]+" y="\d+">([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(labels).toEqual(["0 s", "5 s", "10 s", "15 s", "20 s", "25 s", "30 s"]);
    const short = mkSide("sender", { read: 0.5 }, { streams: 1, activeNs: 0.35e9 });
    const out2 = htmlReport(mkProfile([short]), verdict(mkProfile([short])));
    expect(out2).toContain(">0.05 s<");
    expect(out2).toContain(">0.35 s<");
  });
});
