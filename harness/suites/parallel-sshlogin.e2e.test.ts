// GNU parallel across the multi-host fixture (harness/multihost.ts): the plumbing a plan's
// parallel.sh (issue #17) relies on. Jobs go to the namespaced hosts through `--sshlogin`
// with the fixture's ssh config (`--ssh "ssh -F CFG"`), every job is logged in `--joblog`,
// `--retries 2` re-runs a failing job (on another host), and a second run with
// `--resume-failed` and the same joblog re-runs only the job that failed, which then
// succeeds. Each job appends "<job> <server address>" (from $SSH_CONNECTION) to a file, so
// the test sees which host ran what and how often. Skipped with the reason where namespaces
// or GNU parallel are unavailable.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";

function canParallel(): { ok: boolean; why: string } {
  const mh = canMultiHost();
  if (!mh.ok) return mh;
  if (!Bun.which("parallel"))
    return { ok: false, why: "GNU parallel is not installed: apt-get install --no-install-recommends parallel (npm run setup installs it)" };
  const v = Bun.spawnSync(["parallel", "--version"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (!v.stdout.toString().startsWith("GNU parallel"))
    return { ok: false, why: `\`parallel\` on PATH is not GNU parallel (moreutils?): ${v.stdout.toString().split("\n")[0] ?? ""}` };
  return { ok: true, why: "" };
}

const can = canParallel();
if (!can.ok) console.warn(`[parallel-sshlogin] skipping the GNU parallel --sshlogin tests: ${can.why}`);

const T = 120_000;
let fx: MultiHost | undefined;
let tmp = "";

function need(): MultiHost {
  if (!fx) throw new Error("fixture not started");
  return fx;
}

beforeAll(async () => {
  if (!can.ok) return;
  tmp = makeTmpDir("parallel-sshlogin");
  fx = await startHosts({ count: 3 });
}, T);

afterAll(async () => {
  await fx?.stop();
  if (tmp) removeTmpDir(tmp);
});

interface JoblogRow {
  seq: number;
  host: string;
  exitval: number;
  command: string;
}

/** Rows of a --joblog file (tab-separated, header first). */
function joblog(path: string): JoblogRow[] {
  const [head, ...lines] = readFileSync(path, "utf8").trimEnd().split("\n");
  const cols = (head ?? "").split("\t");
  const at = (name: string): number => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`joblog ${path}: no column ${name} in ${head}`);
    return i;
  };
  return lines.map((l) => {
    const f = l.split("\t");
    return { seq: Number(f[at("Seq")]), host: f[at("Host")] ?? "", exitval: Number(f[at("Exitval")]), command: f[at("Command")] ?? "" };
  });
}

async function parallel(args: readonly string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["parallel", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 90_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe.skipIf(!can.ok)(can.ok ? "GNU parallel --sshlogin across namespaced hosts" : `GNU parallel --sshlogin (skipped: ${can.why})`, () => {
  test(
    "--joblog, --retries 2 on another host, then --resume-failed re-runs only the failed job",
    async () => {
      const f = need();
      const dir = join(tmp, "run1");
      mkdirSync(dir);
      const home = join(dir, "parallel-home"); // parallel's own state (PARALLEL_HOME), not ~/.parallel
      mkdirSync(home);
      const log = join(dir, "joblog");
      const addrOf = new Map(f.hosts.map((h) => [h.addr, h.id]));
      // A job: record who ran it; job "flaky" fails its first attempt only (so --retries
      // turns it into a success in the same run); job "broken" fails while the file
      // `broken` exists (every attempt of run 1), succeeding once the test removes it.
      const job = join(dir, "job.sh");
      writeFileSync(
        job,
        [
          "#!/bin/sh",
          'd="$1"; j="$2"',
          'set -- $SSH_CONNECTION; echo "$j $3" >> "$d/runs-$j"',
          'if [ "$j" = flaky ] && [ "$(wc -l < "$d/runs-$j")" -eq 1 ]; then exit 3; fi',
          'if [ "$j" = broken ] && [ -e "$d/broken" ]; then exit 4; fi',
          'echo "$j done" > "$d/out-$j"',
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      writeFileSync(join(dir, "broken"), "");
      const jobs = ["a", "b", "c", "flaky", "broken", "d"];
      const common = [
        "--will-cite",
        "--ssh",
        `ssh -F ${f.sshConfig}`,
        ...f.hosts.flatMap((h) => ["--sshlogin", `1/${h.id}`]),
        "--joblog",
        log,
        "--retries",
        "2",
        "--tag",
        job,
        dir,
        ":::",
        ...jobs,
      ];
      const env = { PARALLEL_HOME: home };

      const first = await parallel(common, env);
      // parallel's exit status is the number of jobs that failed (after their retries).
      expect(first.code).toBe(1);
      const rows1 = joblog(log);
      const last1 = new Map(rows1.map((r) => [r.command.split(" ").at(-1) ?? "", r]));
      expect(new Set(rows1.map((r) => r.host))).toEqual(new Set(f.hosts.map((h) => h.id)));
      for (const j of ["a", "b", "c", "flaky", "d"]) {
        expect(last1.get(j)?.exitval).toBe(0);
        expect(readFileSync(join(dir, `out-${j}`), "utf8")).toBe(`${j} done\n`);
      }
      expect(last1.get("broken")?.exitval).toBe(4);
      expect(existsSync(join(dir, "out-broken"))).toBe(false);
      const ran = (j: string): string[][] =>
        readFileSync(join(dir, `runs-${j}`), "utf8")
          .trimEnd()
          .split("\n")
          .map((l) => l.split(" "));
      // Every job ran on one of the fixture's hosts (the server address of its ssh session).
      for (const j of jobs) for (const [, addr] of ran(j)) expect(addrOf.has(addr ?? "")).toBe(true);
      // flaky: failed once, retried on another host, succeeded; broken: two attempts, two hosts.
      const flaky = ran("flaky");
      expect(flaky.length).toBe(2);
      expect(flaky[0]?.[1]).not.toBe(flaky[1]?.[1]);
      const broken = ran("broken");
      expect(broken.length).toBe(2);
      expect(broken[0]?.[1]).not.toBe(broken[1]?.[1]);
      for (const j of ["a", "b", "c", "d"]) expect(ran(j).length).toBe(1);

      // Fix the cause, resume: only "broken" runs again (once), the others are not touched.
      rmSync(join(dir, "broken"));
      const second = await parallel(["--resume-failed", ...common], env);
      expect(second.code).toBe(0);
      expect(readFileSync(join(dir, "out-broken"), "utf8")).toBe("broken done\n");
      expect(ran("broken").length).toBe(3);
      for (const j of ["a", "b", "c", "d"]) expect(ran(j).length).toBe(1);
      expect(ran("flaky").length).toBe(2);
      const rows2 = joblog(log);
      const resumed = rows2.slice(rows1.length);
      expect(resumed.map((r) => [r.command.split(" ").at(-1), r.exitval])).toEqual([["broken", 0]]);
      expect(addrOf.get(ran("broken")[2]?.[1] ?? "")).toBe(resumed[0]?.host as "h1" | "h2" | "h3");
    },
    T,
  );

  test(
    "the form parallel.sh writes: a quoted --ssh with -F on a path with a space, -j 2 per login, ':' for this host",
    async () => {
      const f = need();
      const dir = join(tmp, "run2 with space");
      mkdirSync(dir);
      const home = join(dir, "parallel-home");
      mkdirSync(home);
      const cfg = join(dir, "ssh config");
      writeFileSync(cfg, f.sshConfigText);
      const job = join(dir, "job.sh");
      // $SSH_CONNECTION is empty for a job this host runs itself (the ':' login).
      writeFileSync(
        job,
        [
          "#!/bin/sh",
          'set -- "$1" "$2" $SSH_CONNECTION',
          'c="$3"; s="$5"; [ -n "$c" ] || c=local; [ -n "$s" ] || s=local',
          'echo "$c $s" > "$1/out-$2"',
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      const log = join(dir, "joblog");
      const shards = ["0", "1", "2", "3", "4", "5", "6", "7"];
      const r = await parallel(
        [
          "--will-cite",
          "-q",
          "-j",
          "2",
          "--sshlogin",
          ":",
          "--sshlogin",
          "h1",
          "--sshlogin",
          "h2",
          "--ssh",
          `ssh -F '${cfg}'`,
          "--joblog",
          log,
          "--retries",
          "2",
          job,
          dir,
          "{}",
          ":::",
          ...shards,
        ],
        { PARALLEL_HOME: home },
      );
      expect(r.code, r.stderr).toBe(0);
      const rows = joblog(log);
      expect(rows.map((x) => x.exitval)).toEqual(shards.map(() => 0));
      const byHost = new Map<string, string[]>();
      for (const i of shards) {
        const [client, server] = readFileSync(join(dir, `out-${i}`), "utf8")
          .trim()
          .split(" ");
        const where = server === "local" ? "local" : (f.hosts.find((h) => h.addr === server)?.id ?? `unknown ${server}`);
        if (where !== "local") expect(client).toBe(f.localAddr); // reached from here, over the bridge
        byHost.set(where, [...(byHost.get(where) ?? []), i]);
      }
      // The joblog's Host column agrees with where each job says it ran (":" = this host).
      for (const row of rows) {
        const i = row.command.split(" ").at(-1) ?? "";
        const where = row.host === ":" ? "local" : row.host;
        expect(byHost.get(where) ?? []).toContain(i);
      }
      expect([...byHost.keys()].every((k) => ["local", "h1", "h2"].includes(k))).toBe(true);
      expect([...byHost.values()].flat().sort()).toEqual(shards);
    },
    T,
  );
});
