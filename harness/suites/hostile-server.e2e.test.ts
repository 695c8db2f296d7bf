// A hostile server (harness/hostile-server.ts) against the real pull client, through the sshd
// fixture (scp's CVE-2019-6111 class): a server that names what it was not asked for, sends
// unsafe names, breaks the shape of the session or of a file. For each lie: the client's exit
// status and its one line, nothing written outside the destination (its parent and a decoy
// directory beside it stay as they were; /etc/passwd untouched), unsafe names never land, and
// what the server was allowed to send lands verified (the 100,000-byte payload, b3sum).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, watch } from "node:fs";
import { basename, dirname, join } from "node:path";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { REPO_ROOT } from "../escp-run.ts";
import { OVER, OVER_SIZE, PAYLOAD, PAYLOAD_SIZE, type HostileServerReport } from "../hostile-server.ts";
import { b3sum, gate, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const HOSTILE = join(REPO_ROOT, "harness", "hostile-server.ts");
let fx: SshdFixture;
const tmp = makeTmpDir("e2e-hostile-server");
const data = join(tmp, "data"); // what the hostile server sends
const reports = join(tmp, "reports");
const R = "/srv/remote"; // the paths the client asks for (the hostile server answers as it likes)
let payloadSum = "";
let passwdBefore = "";

const passwdState = (): string => {
  const st = statSync("/etc/passwd");
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.mode}`;
};

beforeAll(async () => {
  fx = await startSshd();
  mkdirSync(data);
  mkdirSync(reports);
  await writeRandomFile(join(data, PAYLOAD), PAYLOAD_SIZE, 41);
  await writeRandomFile(join(data, OVER), OVER_SIZE, 42);
  payloadSum = await b3sum(join(data, PAYLOAD));
  passwdBefore = passwdState();
});

afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

/** Resolves once `path` exists (fs.watch on its directory), or rejects after `ms`. */
function appears(path: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = watch(dirname(path), (_e, name) => {
      if (name === basename(path) && existsSync(path)) finish();
    });
    const timer = setTimeout(() => {
      w.close();
      reject(new Error(`${path} did not appear within ${ms} ms (the hostile server did not finish)`));
    }, ms);
    const finish = (): void => {
      clearTimeout(timer);
      w.close();
      resolve();
    };
    if (existsSync(path)) finish();
  });
}

interface Outcome {
  code: number;
  stdout: string;
  /** stderr lines, empty ones dropped. */
  lines: string[];
  report: HostileServerReport;
  top: string;
  dst: string;
}

const slots = gate(3);
let caseNo = 0;

/** Pull `requests` (paths on the fixture host) into a fresh `dst` beside a decoy directory, with
 *  the hostile server in `mode` as the remote escp; waits for the server's report. */
function pull(mode: string, requests: string[], flags: string[] = [], timeoutS = 20): Promise<Outcome> {
  const top = join(tmp, `case-${++caseNo}-${mode}`);
  const dst = join(top, "dst");
  mkdirSync(dst, { recursive: true });
  mkdirSync(join(top, "decoy"));
  const reportPath = join(reports, `${caseNo}-${mode}.json`);
  const cmd = `${process.execPath} ${HOSTILE} --mode ${mode} --data ${data} --report ${reportPath}`;
  return slots(async () => {
    const r = await runEscp(
      ["-q", "--escp_port", "0", "--timeout", String(timeoutS), ...fx.sshArgs, "-D", cmd, ...flags, ...requests.map((p) => `${fx.user}@${fx.host}:${p}`), dst],
      { timeoutMs: 100_000 },
    );
    await appears(reportPath, 100_000);
    const report = JSON.parse(readFileSync(reportPath, "utf8")) as HostileServerReport;
    return { code: r.code, stdout: r.stdout, lines: r.stderr.split("\n").filter((l) => l.trim() !== ""), report, top, dst };
  });
}

/** Nothing outside dst: its parent holds only dst and the empty decoy; no escp temporary in dst;
 *  /etc/passwd as it was; and dst holds exactly `landed` ('/'-separated, sorted), every file
 *  among them the payload byte for byte. */
async function onlyLanded(o: Outcome, landed: string[]): Promise<void> {
  expect(readdirSync(o.top).sort()).toEqual(["decoy", "dst"]);
  expect(readdirSync(join(o.top, "decoy"))).toEqual([]);
  expect(passwdState()).toBe(passwdBefore);
  const got = readdirSync(o.dst, { recursive: true, encoding: "utf8" }).sort();
  expect(got.filter((n) => n.split("/").some((p) => p.startsWith(".escp-")))).toEqual([]);
  expect(got).toEqual([...landed].sort());
  for (const rel of got) if (statSync(join(o.dst, rel)).isFile()) expect(await b3sum(join(o.dst, rel))).toBe(payloadSum);
}

const HOST = (): string => fx.host;
const LONG = 240_000; // a test's timer runs while it waits for one of the three slots

describe.concurrent("hostile server: lies in the reply are refused before any data moves (exit 7)", () => {
  const cases: [mode: string, requests: string[], flags: string[], says: string][] = [
    ["unasked-dotfile", [`${R}/*.txt`], [], 'server sent a name it was not asked for: ".bashrc"'],
    ["extra-name", [`${R}/a.txt`], [], 'server sent a name it was not asked for: "extra.txt"'],
    ["dir-without-r", [`${R}/a.txt`], [], 'server sent a directory it was not asked for: "a.txt" (no -r)'],
    ["duplicate", [`${R}/a.txt`], [], 'server sent the name "a.txt" twice'],
    ["reported-dotdot", [`${R}/.`], ["-r"], 'server sent a name it was not asked for: ".." (".." segment)'],
    ["reported-path", [`${R}/x`], [], 'server sent a name it was not asked for: "../x" (not a single path segment)'],
  ];
  for (const [mode, requests, flags, says] of cases) {
    test(
      `${mode}: ${says}`,
      async () => {
        const o = await pull(mode, requests, flags);
        expect(o.lines).toEqual([`escp: ${HOST()}: ${says}`]);
        expect(o.code).toBe(7);
        await onlyLanded(o, []);
        expect(o.report).toMatchObject({ results: [], acked: false, end: "client gone" });
      },
      LONG,
    );
  }
});

describe.concurrent("hostile server: unsafe names are refused per file, the rest lands (exit 1)", () => {
  test(
    "bundled leaves .., ., ../escaped, x/../../escaped2, /etc/passwd next to d/good2: refused one by one",
    async () => {
      const o = await pull("bundle-unsafe", [`${R}/d`], ["-r"]);
      expect(o.code).toBe(1);
      expect([...o.lines].sort()).toEqual([
        'escp: refusing unsafe name "d/.": "." segment',
        'escp: refusing unsafe name "d/..": ".." segment',
        'escp: refusing unsafe name "d/../escaped": ".." segment',
        'escp: refusing unsafe name "d//etc/passwd": empty path segment',
        'escp: refusing unsafe name "d/x/../../escaped2": ".." segment',
      ]);
      await onlyLanded(o, ["d", "d/good", "d/good2"]);
      expect(o.report.bundles.flatMap((b) => b.failed.map(([, code]) => code))).toEqual(Array(5).fill("E_REJECTED_PATH"));
      expect(o.report).toMatchObject({ acked: true, end: "done" });
    },
    LONG,
  );

  test(
    "../x, /etc/passwd, a/../../b, d/../../b, ../decoy/planted, d/../../decoy/planted2 next to d/good",
    async () => {
      const o = await pull("unsafe-names", [`${R}/d`], ["-r"]);
      const names = ["../x", "/etc/passwd", "a/../../b", "d/../../b", "../decoy/planted", "d/../../decoy/planted2"];
      const why = (n: string): string => (n.startsWith("/") ? "absolute path" : '".." segment');
      expect(o.code).toBe(1);
      expect([...o.lines].sort()).toEqual(names.map((n) => `escp: refusing unsafe name ${JSON.stringify(n)}: ${why(n)}`).sort());
      await onlyLanded(o, ["d", "d/good"]);
      // the server heard each refusal, got the good file's verdict and an orderly close
      const verdicts = new Map(o.report.results.map((r) => [r.fino, r]));
      names.forEach((n, i) => {
        expect(verdicts.get(10 + i)?.code).toBe("E_REJECTED_PATH");
        expect(verdicts.get(10 + i)?.message).toContain(JSON.stringify(n));
      });
      expect(verdicts.get(2)?.code).toBe("");
      expect(o.report).toMatchObject({ acked: true, end: "done" });
    },
    LONG,
  );
});

describe.concurrent("hostile server: a lie mid-session stops the pull, verified files stay", () => {
  const ab = [`${R}/a.txt`, `${R}/b.txt`];
  const cases: [mode: string, requests: string[], flags: string[], code: number, says: string | RegExp, landed: string[]][] = [
    ["outside", [`${R}/d`], ["-r"], 7, 'server sent a name it was not asked for: "e/x"', ["d", "d/good"]],
    ["nested-without-r", [`${R}/a.txt`, `${R}/sub`], [], 7, 'server sent "sub/x", a nested name, without -r', ["a.txt"]],
    ["dir-entry-without-r", [`${R}/a.txt`, `${R}/sub`], [], 7, 'server sent "sub", a directory, without -r', ["a.txt"]],
    ["other-kind", [`${R}/d`], ["-r"], 7, 'server sent "d" as a file, but reported a directory', ["d", "d/good"]],
    ["top-twice", [`${R}/d`], ["-r"], 7, 'server sent "d" twice', ["d", "d/good"]],
    ["dst-field", ab, [], 7, 'server sent a destination name for "b.txt": a pull takes none', ["a.txt"]],
    ["nul-name", ab, [], 7, "received control message fileList: files[0].name contains a NUL byte", ["a.txt"]],
    ["window", [`${R}/d`], ["-r"], 7, "sender announced file #4099 with 4096 files already awaiting their verdict (the window is 4096)", ["d", "d/good"]],
    ["size-over", ab, [], 7, /^data stream \d+: protocol error: file #2: a block (of the wrong length for its size|past its announced size)$/, ["a.txt"]],
    ["size-under", ab, [], 7, `completion of file #2 names ${PAYLOAD_SIZE - 1} bytes, not its announced ${PAYLOAD_SIZE}`, ["a.txt"]],
    ["unknown-done", [`${R}/a.txt`], [], 7, "completion for unknown file #99", ["a.txt"]],
    ["zero-blocks", ab, [], 7, "completion of file #2 with no blocks", ["a.txt"]],
  ];
  for (const [mode, requests, flags, code, says, landed] of cases) {
    test(
      `${mode}: ${String(says)}`,
      async () => {
        const o = await pull(mode, requests, flags);
        expect(o.lines).toHaveLength(1);
        const prefix = `escp: ${HOST()}: `;
        expect(o.lines[0]).toStartWith(prefix);
        if (typeof says === "string") expect(o.lines[0]).toBe(`${prefix}${says}`);
        else expect(o.lines[0]?.slice(prefix.length)).toMatch(says);
        expect(o.code).toBe(code);
        await onlyLanded(o, landed);
        expect(o.report).toMatchObject({ acked: false, end: "client gone" });
      },
      LONG,
    );
  }

  test(
    "second-done: b.txt completed twice in one batch; its first, genuine completion may have named it",
    async () => {
      const o = await pull("second-done", ab);
      expect(o.lines).toEqual([`escp: ${HOST()}: second completion for file #2`]);
      expect(o.code).toBe(7);
      // the first FileDone carried the true digest: b.txt is either verified in place or absent
      await onlyLanded(o, existsSync(join(o.dst, "b.txt")) ? ["a.txt", "b.txt"] : ["a.txt"]);
    },
    LONG,
  );

  test(
    "a server that stops completing a file is given up on: silent after --timeout, alive after 2 × --timeout (exit 9)",
    async () => {
      const [silent, alive] = await Promise.all([pull("withhold", ab, [], 2), pull("withhold-keepalive", ab, [], 2)]);
      expect(silent.lines).toEqual([`escp: ${HOST()}: peer stalled on the control stream: no data from peer for 2 s on stream 0`]);
      expect(alive.lines).toHaveLength(1);
      expect(alive.lines[0]).toMatch(new RegExp(`^escp: no progress from ${HOST().replace(/\./g, "\\.")} for \\d+ s with 1 file unfinished$`));
      for (const o of [silent, alive]) {
        expect(o.code).toBe(9);
        await onlyLanded(o, ["a.txt"]);
      }
    },
    LONG,
  );
});

describe.concurrent("hostile server: per-file failures and harmless nonsense", () => {
  test(
    "wrong-digest: b.txt's FileDone carries a wrong BLAKE3: that file fails, named with both digests (exit 1)",
    async () => {
      const o = await pull("wrong-digest", [`${R}/a.txt`, `${R}/b.txt`]);
      expect(o.code).toBe(1);
      expect(o.lines).toHaveLength(1);
      const m = /^escp: (.+): BLAKE3 mismatch \(sender ([0-9a-f]{64}), receiver ([0-9a-f]{64})\)$/.exec(o.lines[0] ?? "");
      expect(m?.[1]).toBe(join(o.dst, "b.txt"));
      expect(m?.[3]).toBe(payloadSum); // what arrived is the payload; the server's claim is not
      expect(m?.[2]).not.toBe(payloadSum);
      await onlyLanded(o, ["a.txt"]);
      expect(o.report.results.find((r) => r.fino === 2)?.code).toBe("E_DIGEST_MISMATCH");
      expect(o.report).toMatchObject({ acked: true, end: "done" });
    },
    LONG,
  );

  test(
    "sink-messages: verdicts and an ack sent to the sink are ignored; the files land (exit 0)",
    async () => {
      const o = await pull("sink-messages", [`${R}/a.txt`, `${R}/b.txt`]);
      expect(o.lines).toEqual([]);
      expect(o.code).toBe(0);
      await onlyLanded(o, ["a.txt", "b.txt"]);
      expect(o.report).toMatchObject({ acked: true, end: "done" });
    },
    LONG,
  );

  test(
    "reported-not-sent: a reported name never announced is named at the close (exit 7), the rest lands",
    async () => {
      const o = await pull("reported-not-sent", [`${R}/a.txt`, `${R}/b.txt`]);
      expect(o.lines).toEqual(["escp: 127.0.0.1:b.txt: reported by 127.0.0.1 but never sent"]);
      expect(o.code).toBe(7);
      await onlyLanded(o, ["a.txt"]);
    },
    LONG,
  );

  test(
    "done-early: SessionDone before the files: the client still waits for both and verifies them (exit 0)",
    async () => {
      const o = await pull("done-early", [`${R}/a.txt`, `${R}/b.txt`]);
      expect(o.lines).toEqual([]);
      expect(o.code).toBe(0);
      await onlyLanded(o, ["a.txt", "b.txt"]);
      expect(o.report).toMatchObject({ acked: true, end: "done" });
    },
    LONG,
  );
});
