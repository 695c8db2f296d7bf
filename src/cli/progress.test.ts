// Tests for progress formatting (bytes, bits, time, bar), redraw throttling and quiet mode.
import { afterEach, describe, expect, test } from "bun:test";
import { formatBar, formatBytes, formatClock, formatRate, Progress, setTermWriter, summaryLine, term, type TermWriter } from "./progress.ts";

interface Captured extends TermWriter {
  out: string[];
  err: string[];
}

function capture(tty: boolean): Captured {
  const c: Captured = { out: [], err: [], stdoutIsTTY: tty, stderrIsTTY: tty, stdout: (t) => void c.out.push(t), stderr: (t) => void c.err.push(t) };
  return c;
}

let restore: TermWriter | undefined;
function install(w: TermWriter): void {
  const prev = setTermWriter(w);
  restore ??= prev;
}
afterEach(() => {
  if (restore) setTermWriter(restore);
  restore = undefined;
});

describe("formatting", () => {
  test("bytes use %5.1f and 1024 steps", () => {
    expect(formatBytes(0)).toBe("  0.0  B");
    expect(formatBytes(512)).toBe("512.0  B");
    expect(formatBytes(1536)).toBe("  1.5 KB");
    expect(formatBytes(10 * 1024 ** 3)).toBe(" 10.0 GB");
    expect(formatBytes(1024 ** 6)).toBe("  1.0 EB");
  });
  test("rates in bytes and bits", () => {
    expect(formatRate(1024 * 1024, false)).toBe("  1.0 MB/s");
    expect(formatRate(125_000_000, true)).toBe("  1.0 Gbit/s");
    expect(formatRate(1_500_000, true)).toBe(" 12.0 Mbit/s");
  });
  test("clock: MM:SS, HH:MM:SS past an hour, sub-second in the summary", () => {
    expect(formatClock(0)).toBe("00:00");
    expect(formatClock(65.9)).toBe("01:05");
    expect(formatClock(3600)).toBe("01:00:00");
    expect(formatClock(3723)).toBe("01:02:03");
    expect(formatClock(3.256, true)).toBe("00:03.25");
  });
  test("bar is 30 characters", () => {
    expect(formatBar(0)).toBe(`[${" ".repeat(30)}]`);
    expect(formatBar(0.5)).toBe(`[${"=".repeat(14)}>${" ".repeat(15)}]`);
    expect(formatBar(1)).toBe(`[${"=".repeat(30)}]`);
    expect(formatBar(0.5).length).toBe(32);
  });
  test("summary line of a dummy::posix run says the data was synthetic", () => {
    expect(summaryLine({ bytes: 1024, files: 1, failed: 0, seconds: 1, synthetic: true }, false)).toBe(
      "Sent    :   1.0 KB in 1 file at   1.0 KB/s in 00:01.00, synthetic data (zeros)",
    );
  });

  test("summary line of a --shard run names its ranges and the files they completed", () => {
    expect(summaryLine({ bytes: 2 * 1024 ** 2, files: 2, failed: 0, seconds: 2, ranges: { count: 1, completed: 0 } }, false)).toBe(
      "Sent    :   2.0 MB in 2 files at   1.0 MB/s in 00:02.00, 1 range (0 files completed)",
    );
    expect(summaryLine({ bytes: 1024, files: 3, failed: 0, seconds: 1, ranges: { count: 3, completed: 1 } }, false)).toBe(
      "Sent    :   1.0 KB in 3 files at   1.0 KB/s in 00:01.00, 3 ranges (1 file completed)",
    );
  });

  test("summary line", () => {
    expect(summaryLine({ bytes: 2 * 1024 ** 2, files: 3, failed: 0, seconds: 2 }, false)).toBe("Sent    :   2.0 MB in 3 files at   1.0 MB/s in 00:02.00");
    expect(summaryLine({ bytes: 1024, files: 1, failed: 2, seconds: 0 }, false)).toBe("Sent    :   1.0 KB in 1 file at   0.0  B/s in 00:00.00, 2 failed");
  });
});

describe("Progress", () => {
  test("draws on a TTY at most every 200 ms, then prints the summary", () => {
    const w = capture(true);
    install(w);
    let now = 0;
    const p = new Progress({ quiet: false, bits: false, nowMs: () => now });
    p.start(1000, 2);
    now = 1000;
    p.update(500, 1);
    now = 1100;
    p.update(600, 1); // throttled
    now = 1200;
    p.update(700, 1);
    expect(w.out).toHaveLength(2);
    expect(w.out[0]).toBe(`\r [${"=".repeat(14)}>${" ".repeat(15)}] 500.0  B 500.0  B/s  00:01/00:02`);
    p.finish({ bytes: 1000, files: 2, failed: 0, seconds: 2 });
    expect(w.out.at(-1)).toBe("Sent    : 1000.0  B in 2 files at 500.0  B/s in 00:02.00\n");
    expect(w.out.at(-2)).toMatch(/^\r +\r$/); // the live line is cleared first
  });

  test("no bar without a TTY, but the summary is printed", () => {
    const w = capture(false);
    install(w);
    const p = new Progress({ quiet: false, bits: true, nowMs: () => 5000 });
    p.start(10, 1);
    p.update(5, 0);
    p.finish({ bytes: 10, files: 1, failed: 0, seconds: 1 });
    expect(w.out).toEqual(["Sent    :  10.0  B in 1 file at  80.0  bit/s in 00:01.00\n"]);
  });

  test("quiet writes nothing, but errors still show", () => {
    const w = capture(true);
    install(w);
    let now = 0;
    const p = new Progress({ quiet: true, bits: false, nowMs: () => now });
    p.start(100, 1);
    now = 5000;
    p.update(50, 0);
    p.finish({ bytes: 100, files: 1, failed: 1, seconds: 1 });
    expect(w.out).toEqual([]);
    term.error("escp: boom");
    expect(w.err).toEqual(["escp: boom\n"]);
  });

  test("term lines clear a live progress line first", () => {
    const w = capture(true);
    install(w);
    let now = 0;
    const p = new Progress({ quiet: false, bits: false, nowMs: () => now });
    p.start(100, 1);
    now = 1000;
    p.update(50, 0);
    term.warn("warning: x");
    expect(w.out.at(-1)).toMatch(/^\r +\r$/);
    expect(w.err).toEqual(["warning: x\n"]);
    term.info("hello");
    expect(w.out.at(-1)).toBe("hello\n");
    p.finish({ bytes: 100, files: 1, failed: 0, seconds: 1 }); // drops its SIGWINCH listener
  });
});

describe("terminal width", () => {
  const widths = [30, 50, 80, 200];

  test("bar lines never reach the terminal's last column (30, 50, 80, 200; known size and a stream)", () => {
    for (const bits of [false, true]) {
      for (const total of [1 << 40, -1]) {
        const p = new Progress({ quiet: false, bits, nowMs: () => 0 });
        p.start(total, 1);
        for (const cols of widths) {
          for (const [done, secs] of [
            [0, 0],
            [123_456_789, 3],
            [2 ** 39, 4000],
          ] as const) {
            const line = p.barLine(done, secs, cols);
            expect(line.length).toBeLessThanOrEqual(cols - 1);
            expect(line.length).toBeGreaterThan(0);
          }
        }
      }
    }
  });

  test("wide: the 30-cell bar and every field; 50: a shorter bar, same fields; 30: fields drop", () => {
    const p = new Progress({ quiet: false, bits: false, nowMs: () => 0 });
    p.start(1000, 1);
    expect(p.barLine(500, 1, 200)).toBe(` [${"=".repeat(14)}>${" ".repeat(15)}] 500.0  B 500.0  B/s  00:01/00:02`);
    expect(p.barLine(500, 1, 80)).toBe(p.barLine(500, 1, 200));
    expect(p.barLine(500, 1, 50)).toBe(` [======>      ] 500.0  B 500.0  B/s  00:01/00:02`);
    expect(p.barLine(500, 1, 50)).toHaveLength(49);
    expect(p.barLine(500, 1, 30)).toBe(` [======>       ] 00:01/00:02`);
    expect(p.barLine(500, 1, 20)).toBe(` 00:01/00:02`);
  });

  test("draws with the width of the stream it writes to, and redraws on SIGWINCH until finish", () => {
    let cols = 50;
    const w: Captured = {
      out: [],
      err: [],
      stdoutIsTTY: true,
      stderrIsTTY: true,
      stdout: (t) => void w.out.push(t),
      stderr: (t) => void w.err.push(t),
      get stdoutColumns(): number {
        return cols;
      },
      stderrColumns: 300,
    };
    install(w);
    const before = process.listenerCount("SIGWINCH");
    let now = 0;
    const p = new Progress({ quiet: false, bits: false, nowMs: () => now });
    p.start(1000, 1);
    now = 1000;
    p.update(500, 0);
    expect(w.out).toEqual([`\r${p.barLine(500, 1, 50)}`]);
    expect(process.listenerCount("SIGWINCH")).toBe(before + 1);
    cols = 30;
    process.emit("SIGWINCH");
    // the old line is cleared (one row's worth at most) and redrawn at the new width at once
    expect(w.out.slice(1)).toEqual([`\r${" ".repeat(29)}\r`, `\r${p.barLine(500, 1, 30)}`]);
    for (const t of w.out.slice(1)) for (const part of t.split("\r")) expect(part.length).toBeLessThanOrEqual(29);
    p.finish({ bytes: 1000, files: 1, failed: 0, seconds: 2 });
    expect(process.listenerCount("SIGWINCH")).toBe(before);
  });
});
