// The benchmark matrix: scenarios, each a dataset and a list of cases (escp configurations
// and peers), with the reference its ratios are taken to. `--smoke` shrinks every size.
import { RESUME_LABELS } from "../lib/resume.ts";
import type { Tool } from "../lib/results.ts";
import type { Options, PeerName, ScenarioName } from "./options.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** A catalog dataset and its parameters (seed included). */
export interface DatasetRef {
  name: string;
  params: Record<string, number>;
}

export interface CaseSpec {
  tool: Tool;
  /** Tool flags as run (for escp: escp flags; for dd: its operands; for iperf3: -P N). */
  flags: string[];
  /** iperf3 parallel streams. */
  streams?: number;
  /** Repeats of this case when fewer than the scenario's (--repeat overrides both). */
  repeats?: number;
  /** escp only: pull the dataset from the sshd's side (`escp host:SRC localdir`) instead of pushing it. */
  pull?: boolean;
  /** escp only: push the dataset's one file as a stream, `cat FILE | escp - host:DIR/NAME`. */
  stdin?: boolean;
  /** The case's label when its flags do not say what it is (e.g. an environment or a rerun). */
  label?: string;
  /** escp only: NAME=value words for the remote escp's environment, put in front of -D's
   *  command (`-D "ESCP_JOURNAL=0 <bun> src/cli/main.ts"`; the remote shell applies them). */
  remoteEnv?: string[];
  /** escp only: pass --logfile (a fresh path per run) and read the initiator's "session done"
   *  record: bytes, and bytes resumed from an earlier partial (never sent). */
  logfile?: boolean;
  /** escp only: before each timed run, an UNTIMED run of the same command whose receiver (the
   *  sshd's side) is signalled once it has written `at` × the dataset's bytes (the fault hook
   *  ESCP_FAULT_KILL_BYTES=receiver:N[:TERM] in the remote environment); the timed run is
   *  then the rerun of the same command (without the hook), which resumes the partial. */
  interrupt?: { at: number; signal: "KILL" | "TERM" };
  /** Why this case cannot run in its scenario at all (listed as skipped with this reason). */
  unsupported?: string;
  /** system-tree: the tool keeps hard links, so its copy is also checked with rsync -H. */
  hardLinks?: boolean;
}

/** Real directories copied as they are (system-tree), instead of a catalog dataset. */
export interface SystemSources {
  /** Absolute paths, distinct basenames: each lands as DEST/<basename>. */
  sources: string[];
}

export interface ScenarioSpec {
  name: ScenarioName;
  title: string;
  dataset: DatasetRef | null;
  /** Real directories instead of a dataset (then `dataset` is null). */
  system?: SystemSources;
  /** loopback sshd; the namespaced WAN; the multi-host fixture (source on h1, destination on h2). */
  transport: "loopback" | "wan" | "multihost";
  repeats: number;
  /** Reference candidates (the fastest of them with a verified run is the reference);
   *  empty: the fastest peer (not escp, not the original EScp). */
  reference: { tool: Tool; label: string }[];
  cases: CaseSpec[];
  /** iperf3 -t seconds. */
  iperfSeconds: number;
  note?: string;
  /** What happens to a tree's copy after its run: moved aside until the bench ends (the
   *  default, see run.ts), or deleted right away followed by a sync (files-1m: one copy of a
   *  million files at a time; the next run's page-cache drop then also forgets the freed
   *  inodes, which ext4 without a journal would otherwise skip one by one). */
  copies?: "aside" | "delete";
}

export const labelOf = (c: CaseSpec): string => {
  if (c.label !== undefined) return c.label;
  const words = c.pull ? ["pull", ...c.flags] : c.flags;
  return words.length === 0 ? "default" : words.join(" ");
};

const DD_FLAGS = ["bs=4M", "iflag=direct", "oflag=direct"];
const escp = (...flags: string[]): CaseSpec => ({ tool: "escp", flags });
const escpPull = (...flags: string[]): CaseSpec => ({ tool: "escp", flags, pull: true });
const escpStdin = (...flags: string[]): CaseSpec => ({ tool: "escp", flags, stdin: true, label: ["cat |", ...flags, "-"].join(" ") });
const peer = (tool: Tool, ...flags: string[]): CaseSpec => ({ tool, flags });
const iperf = (streams: number): CaseSpec => ({ tool: "iperf3", flags: ["-P", String(streams)], streams });

/** Every scenario of the matrix for these options (before peer filtering). */
export function buildMatrix(o: Options): ScenarioSpec[] {
  const smoke = o.smoke;
  const rep = (full: number): number => o.repeat ?? (smoke ? 1 : full);
  const size = (full: number, tiny: number): number => o.size ?? (smoke ? tiny : full);
  const count = (full: number, tiny: number): number => o.files ?? (smoke ? tiny : full);
  const random = (bytes: number): DatasetRef => ({ name: "big-random", params: { size: bytes, seed: 1 } });
  const all: ScenarioSpec[] = [
    {
      name: "big-random",
      title: "one random file, disk to disk over loopback sshd",
      dataset: random(size(4 * GiB, 32 * MiB)),
      transport: "loopback",
      repeats: rep(3),
      reference: [{ tool: "dd", label: DD_FLAGS.join(" ") }],
      cases: [
        escp(),
        escpPull(), // the same dataset the other way: pull from the sshd (within 10 % of push)
        escpStdin(), // the same bytes as a stream from a pipe (issue 15: ≥ 90 % of the file push)
        escp("--nochecksum"),
        peer("escp-orig"),
        peer("dd", ...DD_FLAGS),
        // The ssh-based peers take 10–50 s per 4 GiB here: two rounds of them, three of the rest.
        { ...peer("scp"), repeats: rep(2) },
        { ...peer("sftp"), repeats: rep(2) },
        { ...peer("rsync"), repeats: rep(2) },
        { ...peer("tar-ssh"), repeats: rep(2) },
      ],
      iperfSeconds: 0,
      note: "dd copies the same file onto the same filesystem with O_DIRECT: the disk limit",
    },
    {
      name: "dummy",
      title: "no disk (--ioengine dummy): the network and crypto path over loopback",
      dataset: random(size(4 * GiB, 32 * MiB)),
      transport: "loopback",
      repeats: rep(3),
      reference: [
        { tool: "iperf3", label: "-P 1" },
        { tool: "iperf3", label: "-P 8" },
      ],
      cases: [
        escp("--ioengine", "dummy"),
        escpStdin("--ioengine", "dummy"),
        escp("--ioengine", "dummy", "--nochecksum"),
        peer("escp-orig", "--ioengine", "dummy"),
        iperf(1),
        iperf(8),
      ],
      iperfSeconds: smoke ? 1 : 5,
      note: "escp keeps BLAKE3 on unless --nochecksum; the original's checksums are off by default at HEAD; iperf3 uses 1 MiB writes; the reference is the faster iperf3",
    },
    {
      name: "axes",
      title: "escp configuration axes on a smaller random file",
      dataset: random(size(GiB, 16 * MiB)),
      transport: "loopback",
      repeats: rep(2),
      reference: [{ tool: "dd", label: DD_FLAGS.join(" ") }],
      cases: smoke
        ? [escp("-t", "4"), escp("-t", "1"), escp("--blocksize", "256K"), peer("dd", ...DD_FLAGS)]
        : [
            escp("-t", "4"),
            escp("-t", "1"),
            escp("-t", "2"),
            escp("-t", "8"),
            escp("--blocksize", "256K"),
            escp("--blocksize", "4M"),
            escp("--nodirect"),
            escp("--ioengine", "posix::dummy"),
            peer("dd", ...DD_FLAGS),
          ],
      iperfSeconds: 0,
      note: "-t 4 --blocksize 1M --ioengine posix are the defaults; posix::dummy reads the disk but the receiver writes nothing",
    },
    {
      name: "big-text",
      title: "one compressible text file (zstd -3 ratio ≈ 3)",
      dataset: { name: "big-text", params: { size: size(512 * MiB, 16 * MiB), ratio: 3, seed: 1 } },
      transport: "loopback",
      repeats: rep(2),
      reference: [],
      cases: [escp(), escp("-C"), peer("scp"), peer("scp", "-C"), peer("rsync"), peer("rsync", "-z"), peer("tar-ssh"), peer("tar-ssh", "--zstd")],
      iperfSeconds: 0,
      note: "escp -C is streaming zstd (level 3) per data stream (it only warned and sent uncompressed before that landed); scp -C is zlib inside ssh; rsync -z negotiates zstd",
    },
    {
      name: "losf",
      title: `lots of small files: ${count(10_000, 200).toLocaleString("en-US")} × 4 KiB in 10 directories`,
      dataset: { name: "losf-4k", params: { files: count(10_000, 200), seed: 1 } },
      transport: "loopback",
      repeats: rep(3),
      reference: [{ tool: "cp", label: "-r" }],
      cases: [escp(), escpPull(), peer("escp-orig"), peer("rsync"), peer("scp"), peer("sftp"), peer("tar-ssh"), peer("cp", "-r")],
      iperfSeconds: 0,
      note: "cp -r onto the same filesystem is the filesystem limit; escp pull reads the same tree through the sshd and writes here",
    },
    {
      name: "mixed",
      title: "a source-tree-like spread of small, medium and a few large files",
      dataset: { name: "mixed", params: { files: count(1000, 100), seed: 1 } },
      transport: "loopback",
      repeats: rep(2),
      reference: [{ tool: "cp", label: "-r" }],
      cases: [escp(), peer("escp-orig"), peer("rsync"), peer("scp"), peer("sftp"), peer("tar-ssh"), peer("cp", "-r")],
      iperfSeconds: 0,
    },
    {
      name: "wan",
      title: "emulated WAN, 50 ms RTT, 1 Gbit/s, no loss (namespaces + userspace delay line)",
      dataset: random(size(512 * MiB, 16 * MiB)),
      transport: "wan",
      repeats: rep(2),
      reference: [
        { tool: "iperf3", label: "-P 1" },
        { tool: "iperf3", label: "-P 8" },
      ],
      cases: [escp(), peer("scp"), iperf(1), iperf(8)],
      iperfSeconds: smoke ? 2 : 8,
      note: "the delay line itself tops out near 155 MB/s on this machine; sshd and receivers run in namespace b; the reference is the faster iperf3",
    },
    {
      name: "third-party",
      title: "third-party copy h1 → h2 driven from here (multi-host fixture: network namespaces, one sshd each)",
      dataset: random(size(512 * MiB, 16 * MiB)),
      transport: "multihost",
      repeats: rep(3),
      reference: [{ tool: "scp", label: "-3" }],
      cases: [escp("-3"), escp("-3", "--direct"), peer("scp", "-3")],
      iperfSeconds: 0,
      note: "escp -3 relays both servers' streams through this host without decrypting; --direct has h1 connect to h2; scp -3 (OpenSSH, SFTP) also copies through this host; the hosts share this machine's disk and CPUs",
    },
    resumeScenario(random(size(4 * GiB, 32 * MiB)), rep(3), smoke),
    systemTreeScenario(rep(2), smoke),
    manyFilesScenario("files-100k", count(100_000, 300), rep(2), smoke),
    manyFilesScenario("files-1m", count(1_000_000, 600), rep(1), smoke),
  ];
  return all.filter((s) => o.scenarios.includes(s.name));
}

/** Resume (issue 12): a full push (the reference), the same push with the receiver's partials
 *  and journal off (ESCP_JOURNAL=0: the journal's overhead), and the rerun of the push after
 *  its receiver was SIGKILLed at 50 % (an untimed first run), plus (not with --smoke) the
 *  same after SIGTERM (the receiver seals its partial on the way out: the rerun need not
 *  re-hash it). With
 *  --smoke the 32 MiB file would never reach the default 64 MiB group commit before the
 *  kill, so every case's receiver commits every 4 MiB (ESCP_JOURNAL_BYTES) there. */
function resumeScenario(dataset: DatasetRef, repeats: number, smoke: boolean): ScenarioSpec {
  const group = smoke ? ["ESCP_JOURNAL_BYTES=4194304"] : [];
  const logged = (label: string, extra: Pick<CaseSpec, "remoteEnv" | "interrupt">): CaseSpec => ({
    tool: "escp",
    flags: [],
    label,
    logfile: true,
    remoteEnv: [...group, ...(extra.remoteEnv ?? [])],
    ...(extra.interrupt ? { interrupt: extra.interrupt } : {}),
  });
  return {
    name: "resume",
    title: "a push rerun after its receiver was killed at 50 %, and the journal's cost",
    dataset,
    transport: "loopback",
    repeats,
    reference: [{ tool: "escp", label: RESUME_LABELS.full }],
    cases: [
      logged(RESUME_LABELS.full, {}),
      logged(RESUME_LABELS.off, { remoteEnv: ["ESCP_JOURNAL=0"] }),
      logged(RESUME_LABELS.kill, { interrupt: { at: 0.5, signal: "KILL" } }),
      // A SIGTERMed receiver's sender lingers until its second keepalive fails (≈ 20 s at
      // the default --timeout 30) before the rerun can start: full size only.
      ...(smoke ? [] : [logged(RESUME_LABELS.term, { interrupt: { at: 0.5, signal: "TERM" } })]),
    ],
    iperfSeconds: 0,
    note:
      "escp defaults, pushed over the loopback sshd with --logfile; ESCP_JOURNAL=0 is set in the receiver's environment (through -D); a rerun case's first run (untimed) has its receiver signalled once it has written half the file (ESCP_FAULT_KILL_BYTES=receiver:N[:TERM] through -D), the timed run is the same command again, resuming the partial; bytes moved = size − resumed (the initiator's session-done record)" +
      (smoke ? "; --smoke: ESCP_JOURNAL_BYTES=4194304 on every receiver (the 64 MiB default group would never commit in 32 MiB)" : ""),
  };
}

/** The system tree's sources: the real directories of issue 13, or with --smoke two small
 *  ones that still hold regular files, directories and symbolic links. */
export const SYSTEM_SOURCES = {
  full: ["/usr/include", "/usr/lib/x86_64-linux-gnu"],
  smoke: ["/usr/include/linux", "/usr/lib/x86_64-linux-gnu/sasl2"],
} as const;

/** System tree (issue 13): two real directories, passed as two sources of one command, copied
 *  with archive semantics into a fresh directory; every copy must leave nothing for
 *  `rsync -a --dry-run --itemize-changes` to do. rsync -a does not keep hard links (-H is not
 *  part of -a), so it writes the 13 hard links of /usr/lib/x86_64-linux-gnu/dri/ as 13 files:
 *  rsync -a -H runs beside it, the like-for-like peer. */
function systemTreeScenario(repeats: number, smoke: boolean): ScenarioSpec {
  const sources = [...(smoke ? SYSTEM_SOURCES.smoke : SYSTEM_SOURCES.full)];
  return {
    name: "system-tree",
    title: `a real system tree with -a: ${sources.join(" + ")}`,
    dataset: null,
    system: { sources },
    transport: "loopback",
    repeats,
    reference: [{ tool: "cp", label: "-a" }],
    cases: [
      { ...escp("-a"), hardLinks: true },
      { ...escpPull("-a"), hardLinks: true },
      {
        ...peer("escp-orig", "-r"),
        unsupported:
          "the original EScp has no -a: with -r it follows symbolic links and keeps no modes, owners, times nor hard links, so its copy cannot pass the rsync -a check (not run)",
      },
      peer("rsync", "-a"),
      // The smoke subset has no hard link: -H would only add a run to CI.
      ...(smoke ? [] : [{ ...peer("rsync", "-a", "-H"), hardLinks: true }]),
      { ...peer("cp", "-a"), hardLinks: true },
    ],
    iperfSeconds: 0,
    note:
      "the directories are the sources of one command, copied into a fresh directory (the sshd's side writes it; escp pull reads them through the sshd and writes here); the receiver runs as root, so owners are kept; cp -a is the filesystem limit; " +
      "every copy must leave `rsync -a --delete --no-devices --no-specials --dry-run --itemize-changes --numeric-ids SRC/ COPY/` silent for every source (with -H for the tools that keep hard links: escp -a, rsync -a -H, cp -a; rsync -a alone does not); files = regular files, bytes = their sizes with each hard-linked inode counted once",
  };
}

/** Files per leaf directory of the files-100k / files-1m datasets (small-mixed's perdir):
 *  1,000 as issue 13 asks; 50 with --smoke, so a few hundred files still spread over dirs. */
export const MANY_FILES_PER_DIR = { full: 1000, smoke: 50 } as const;

/** files-100k / files-1m (issue 13): `files` files of mixed sizes 0–64 KiB (dataset
 *  small-mixed: log-uniform-ish, mean ≈ 3.2 KiB, every 100th empty, every 500th exactly
 *  64 KiB) in directories of 1,000 files (d0000/d00/f000), copied with -r over the loopback
 *  sshd by escp (push and pull) and rsync, and by cp -r (the filesystem limit). files/s and
 *  the peak RSS of both sides are the figures; every copy is verified (sizes + BLAKE3). The
 *  original EScp runs (with --peer-escp) at 100,000 files only. A million-file copy is
 *  deleted after its run instead of kept aside (≈ 6.7 GB each on disk). */
function manyFilesScenario(name: "files-100k" | "files-1m", files: number, repeats: number, smoke: boolean): ScenarioSpec {
  const million = name === "files-1m";
  const perdir = smoke ? MANY_FILES_PER_DIR.smoke : MANY_FILES_PER_DIR.full;
  return {
    name,
    title: `${files.toLocaleString("en-US")} files of mixed sizes 0–64 KiB in directories of ${perdir.toLocaleString("en-US")}`,
    dataset: { name: "small-mixed", params: { files, perdir, seed: 1 } },
    transport: "loopback",
    repeats,
    reference: [{ tool: "cp", label: "-r" }],
    // --smoke leaves out files-100k's pull (losf's smoke pull runs the same path): CI time.
    cases: [escp(), ...(smoke && !million ? [] : [escpPull()]), ...(million ? [] : [peer("escp-orig")]), peer("rsync"), peer("cp", "-r")],
    iperfSeconds: 0,
    ...(million ? { copies: "delete" as const } : {}),
    note:
      "cp -r onto the same filesystem is the filesystem limit; escp pull reads the same tree through the sshd and writes here; files/s and the peak RSS of the sender and the receiver side are the figures" +
      (million
        ? "; the original EScp is not run at this size (files-100k has it); every copy is deleted (then sync) right after its run, outside the timed window"
        : ""),
  };
}

/** Whether a peer case is enabled by --peers (escp itself always is). */
export function peerEnabled(tool: Tool, peers: readonly PeerName[]): boolean {
  return tool === "escp" || (peers as readonly string[]).includes(tool);
}
