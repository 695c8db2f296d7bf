// THE option table: every flag, env var (ESCP_<NAME>), /etc/escp.conf key, default, bounds
// and help line lives here; args.ts, load.ts and usage.ts are driven by it.
// EScp differs: -o is repeatable and keeps every value; --escp_portrange is honoured.

import { ESCP_BUNDLE_FILE_MAX, ESCP_RETRIES_MAX } from "../native/symbols.ts";

export type OptionType = "bool" | "int" | "size" | "rate" | "string" | "list" | "enum";
export type IoEngine = "posix" | "dummy";
export const IO_ENGINES: readonly IoEngine[] = ["posix", "dummy"];

export interface Options {
  filelist?: string;
  /** --shard FILE: a --filelist whose sources may end in @OFFSET+LENGTH (byte ranges); resume forced on. */
  shard?: string;
  /** --shard-done FILE: skip the shard's entries an earlier attempt verified (its --json output). */
  shardDone?: string;
  /** SSH port; an scp:// URI port overrides it. */
  port: number;
  /** First TCP data port the receiver tries. */
  escpPort: number;
  /** Number of data ports the receiver tries, starting at escpPort. */
  escpPortrange: number;
  verbose: boolean;
  logfile?: string;
  quiet: boolean;
  /** Pacing limit in bytes/s per socket; 0 = off. */
  limit: number;
  preserve: boolean;
  compress: boolean;
  /** zstd level used by -C (1..19). */
  compressLevel: number;
  /** --profile FILE: Chrome trace JSON at FILE, HTML report beside it. */
  profile?: string;
  sparse: boolean;
  recursive: boolean;
  /** -a: -r -p plus symbolic links as links, hard links kept, owner and group (receiver as root). */
  archive: boolean;
  /** --xattrs: extended attributes travel with files and directories. */
  xattrs: boolean;
  /** Every -o value, in order, passed to ssh as `-o VALUE`. */
  sshOptions: string[];
  ssh: string;
  /** Remote escp command (-D). */
  escp: string;
  /** Block size in bytes: a power of two in 64 KiB..64 MiB. */
  blocksize: number;
  /** Files of at most this many bytes inside a copied directory travel packed in bundles (0 = never). */
  bundleMax: number;
  ioengine: IoEngine;
  /** Receiver's engine: the RX half of `--ioengine TX::RX`, else the same as ioengine. */
  ioengineRx: IoEngine;
  threads: number;
  bits: boolean;
  nodirect: boolean;
  nochecksum: boolean;
  agent: boolean;
  cipher?: string;
  identity?: string;
  sshConfig?: string;
  jumpHost?: string;
  batchMode: boolean;
  ipv4: boolean;
  ipv6: boolean;
  timeoutMs: number;
  builtinSsh: boolean;
  /** This side listens for the data streams and the server connects to it. */
  localListen: boolean;
  /** -3: copy between two remote hosts (also implied by a remote source and a remote destination). */
  thirdParty: boolean;
  /** -3: host1 connects straight to host2 instead of relaying through this host. */
  direct: boolean;
  server: boolean;
  /** Server only: every write of the session stays beneath this directory (forced-command keys). */
  restrict?: string;
  mgmt?: string;
  license: boolean;
  help: boolean;
  version: boolean;
  /** Rerunning continues files an earlier run left unfinished (off: --no-resume). */
  resume: boolean;
  /** Reconnect attempts in a row for a dropped data stream (0: a drop ends the session). */
  retries: number;
  /** Times a dropped data stream is re-established before the session fails. */
  /** --manifest FILE: one b3sum line per verified file, relative to the destination root. */
  manifest?: string;
  /** --json: JSON lines on stdout instead of the progress bar and summary. */
  json: boolean;
  /** --numa: "off", "auto" (the NIC's node, else the storage's) or a node number (transfer/numa.ts). */
  numa: string;
  /** /etc/escp.conf only: CPU affinity mask, validated hex (byte k bit j = CPU 8k+j). */
  cpumask?: string;
  /** /etc/escp.conf only: NUMA node mask, validated hex. */
  nodemask?: string;
  /** escp plan: number of shards. */
  shards?: number;
  /** escp plan: where the plan directory is written. */
  planDir: string;
  /** escp plan: "SRC_HOST DST_HOST" lines for the launch scripts. */
  hosts?: string;
  /** escp plan: at most this many shards run at once (Slurm %M, GNU parallel jobs). */
  maxParallel?: number;
  /** escp plan: the command the launch scripts run for a shard (plan.json run_cmd). */
  runCmd: string;
  /** escp plan: replace an existing plan directory. */
  force: boolean;
}

export type OptionField = keyof Options;
export type OptionValue = boolean | number | string | string[];

export interface OptionSpec {
  readonly field: OptionField;
  /** Long flag without the leading "--"; absent for config-only or short-only options. */
  readonly long?: string;
  /** One-character short flag without the "-". */
  readonly short?: string;
  readonly type: OptionType;
  /** In stored units (timeoutMs: 30_000, blocksize: bytes). */
  readonly default?: OptionValue;
  /** Inclusive bounds in the user's unit (before `scale`). */
  readonly min?: number;
  readonly max?: number;
  /** size only: the value must be a power of two. */
  readonly powerOfTwo?: boolean;
  readonly choices?: readonly string[];
  /** Stored value = user value × scale (timeout: seconds → ms). */
  readonly scale?: number;
  readonly env?: string;
  readonly yamlKey?: string;
  readonly hidden?: boolean;
  /** bool only: `--no-<long>` sets it false (a default-on option the user can turn off). */
  readonly negatable?: boolean;
  /** Only for `escp plan`: refused elsewhere, never recorded among the shards' options. */
  readonly plan?: boolean;
  /** Placeholder shown in --help, e.g. "N" or "FILE". */
  readonly valueName?: string;
  readonly help: string;
}

const KIB = 1024;
const MIB = 1024 * 1024;

/** Options settable from env (ESCP_<KEY>) and /etc/escp.conf (<key>) share one name. */
function cfg(key: string): { env: string; yamlKey: string } {
  return { env: `ESCP_${key.toUpperCase()}`, yamlKey: key };
}

export const OPTION_TABLE: readonly OptionSpec[] = [
  {
    field: "filelist",
    long: "filelist",
    type: "string",
    valueName: "FILE",
    help: "read sources from FILE: a YAML list of paths or [src, dst] pairs, or one path per line",
  },
  {
    field: "shard",
    long: "shard",
    type: "string",
    valueName: "FILE",
    help: "run one shard of a plan: FILE is a --filelist whose sources may end in @OFFSET+LENGTH (a byte range of the file); resume is on",
  },
  {
    field: "shardDone",
    long: "shard-done",
    type: "string",
    valueName: "FILE",
    help: "with --shard: skip the entries an earlier attempt of this shard verified, as its --json output FILE reports them",
  },
  {
    field: "port",
    long: "port",
    short: "P",
    type: "int",
    default: 22,
    min: 1,
    max: 65535,
    valueName: "N",
    ...cfg("port"),
    help: "SSH port; an scp:// URI port wins",
  },
  {
    field: "escpPort",
    long: "escp_port",
    type: "int",
    default: 1232,
    min: 0,
    max: 65535,
    valueName: "N",
    ...cfg("escp_port"),
    help: "first TCP data port tried by the receiver (0 = any free port)",
  },
  {
    field: "escpPortrange",
    long: "escp_portrange",
    type: "int",
    default: 10,
    min: 1,
    max: 1000,
    valueName: "N",
    ...cfg("escp_portrange"),
    help: "number of data ports the receiver tries",
  },
  { field: "verbose", long: "verbose", short: "v", type: "bool", default: false, ...cfg("verbose"), help: "debug logging on both sides" },
  {
    field: "logfile",
    long: "logfile",
    type: "string",
    valueName: "PATH",
    ...cfg("logfile"),
    help: "JSON-lines log to PATH.client here and PATH.server on the receiver",
  },
  { field: "quiet", long: "quiet", short: "q", type: "bool", default: false, ...cfg("quiet"), help: "no progress bar and no summary (errors are still shown)" },
  {
    field: "limit",
    long: "limit",
    short: "l",
    type: "rate",
    default: 0,
    valueName: "RATE",
    ...cfg("limit"),
    help: "pace each socket to RATE bytes/s (1M = 2^20, 100Mbit = 12.5e6, 0 = off)",
  },
  {
    field: "preserve",
    long: "preserve",
    short: "p",
    type: "bool",
    default: false,
    ...cfg("preserve"),
    help: "preserve modes and access/modification times of files and directories",
  },
  {
    field: "compress",
    long: "compress",
    short: "C",
    type: "bool",
    default: false,
    ...cfg("compress"),
    help: "compress data with streaming zstd per stream (incompressible blocks are sent raw)",
  },
  {
    field: "compressLevel",
    long: "compress-level",
    type: "int",
    default: 3,
    min: 1,
    max: 19,
    valueName: "N",
    ...cfg("compress_level"),
    help: "zstd level for -C (1 fastest … 19 smallest)",
  },
  {
    field: "profile",
    long: "profile",
    type: "string",
    valueName: "FILE",
    help: "profile the transfer: Chrome trace JSON to FILE, HTML report to FILE.html; -v prints the verdict",
  },
  { field: "sparse", long: "sparse", type: "bool", default: false, ...cfg("sparse"), help: "receiver skips writing all-zero blocks" },
  { field: "recursive", long: "recursive", short: "r", type: "bool", default: false, help: "copy directories recursively" },
  {
    field: "archive",
    long: "archive",
    short: "a",
    type: "bool",
    default: false,
    help: "like rsync -a: -r -p, symbolic links as links, hard links kept, owner and group when the receiver runs as root; devices, FIFOs and sockets skipped",
  },
  {
    field: "xattrs",
    long: "xattrs",
    type: "bool",
    default: false,
    ...cfg("xattrs"),
    help: "copy extended attributes of files and directories (only user.* unless the receiver runs as root)",
  },
  {
    field: "sshOptions",
    short: "o",
    type: "list",
    default: [],
    valueName: "OPT",
    ...cfg("ssh_options"),
    help: "pass -o OPT to ssh (repeatable; all are kept)",
  },
  { field: "ssh", long: "ssh", short: "S", type: "string", default: "ssh", valueName: "BIN", ...cfg("ssh"), help: "SSH program to run" },
  {
    field: "escp",
    long: "escp",
    short: "D",
    type: "string",
    default: "escp",
    valueName: "CMD",
    ...cfg("escp"),
    help: "escp command to run on the remote host",
  },
  {
    field: "blocksize",
    long: "blocksize",
    type: "size",
    default: MIB,
    min: 64 * KIB,
    max: 64 * MIB,
    powerOfTwo: true,
    valueName: "SIZE",
    ...cfg("blocksize"),
    help: "block size, a power of two from 64K to 64M",
  },
  {
    field: "bundleMax",
    long: "bundle-max",
    type: "size",
    default: 64 * KIB,
    min: 0,
    max: ESCP_BUNDLE_FILE_MAX,
    valueName: "SIZE",
    ...cfg("bundle_max"),
    help: "files up to SIZE inside copied directories travel many to a frame, with no per-file round trip (0 = one by one)",
  },
  {
    field: "ioengine",
    long: "ioengine",
    type: "enum",
    default: "posix",
    choices: IO_ENGINES,
    valueName: "E[::E]",
    ...cfg("ioengine"),
    help: "I/O engine: posix or dummy; TX::RX sets the receiver's separately",
  },
  {
    field: "threads",
    long: "parallel",
    short: "t",
    type: "int",
    default: 4,
    min: 1,
    max: 64,
    valueName: "N",
    ...cfg("threads"),
    help: "number of parallel data streams",
  },
  { field: "bits", long: "bits", type: "bool", default: false, ...cfg("bits"), help: "show rates in bit/s (1000-based)" },
  { field: "nodirect", long: "nodirect", type: "bool", default: false, ...cfg("nodirect"), help: "do not use O_DIRECT on either side" },
  { field: "nochecksum", long: "nochecksum", type: "bool", default: false, ...cfg("nochecksum"), help: "skip end-to-end BLAKE3 verification" },
  { field: "agent", long: "agent", short: "A", type: "bool", default: false, ...cfg("agent"), help: "forward the SSH agent (ssh -A)" },
  { field: "cipher", long: "cipher", short: "c", type: "string", valueName: "CIPHER", ...cfg("cipher"), help: "SSH cipher (ssh -c)" },
  { field: "identity", long: "identity", short: "i", type: "string", valueName: "FILE", ...cfg("identity"), help: "SSH identity file (ssh -i)" },
  { field: "sshConfig", long: "ssh_config", short: "F", type: "string", valueName: "FILE", ...cfg("ssh_config"), help: "SSH config file (ssh -F)" },
  {
    field: "jumpHost",
    long: "jump_host",
    short: "J",
    type: "string",
    valueName: "HOST",
    ...cfg("jump_host"),
    help: "SSH jump host (ssh -J); data streams still connect directly",
  },
  { field: "batchMode", long: "batch", short: "B", type: "bool", default: false, ...cfg("batch"), help: "never prompt for passwords (ssh BatchMode=yes)" },
  { field: "ipv4", short: "4", type: "bool", default: false, ...cfg("ipv4"), help: "use IPv4 only" },
  { field: "ipv6", short: "6", type: "bool", default: false, ...cfg("ipv6"), help: "use IPv6 only" },
  {
    field: "timeoutMs",
    long: "timeout",
    type: "int",
    default: 30_000,
    min: 1,
    max: 86_400,
    scale: 1000,
    valueName: "SECONDS",
    ...cfg("timeout"),
    help: "give up when the peer is silent this long",
  },
  {
    field: "builtinSsh",
    long: "builtin-ssh",
    type: "bool",
    default: false,
    ...cfg("builtin_ssh"),
    help: "use the built-in SSH client instead of the ssh program",
  },
  {
    field: "thirdParty",
    short: "3",
    type: "bool",
    default: false,
    help: "copy between two remote hosts (host1:src host2:dst); the data is relayed through this host, never decrypted",
  },
  {
    field: "direct",
    long: "direct",
    type: "bool",
    default: false,
    ...cfg("direct"),
    help: "with -3: host1 connects straight to host2 (falls back to the relay if it cannot)",
  },
  {
    field: "localListen",
    long: "local-listen",
    type: "bool",
    default: false,
    ...cfg("local_listen"),
    help: "listen here for the data streams; the remote connects (when only this side can accept connections)",
  },
  {
    field: "numa",
    long: "numa",
    type: "string",
    default: "auto",
    valueName: "MODE",
    ...cfg("numa"),
    help: "stream threads and their buffers on a NUMA node: auto (the data NIC's, else the storage's), off, or a node number; this side only",
  },
  {
    field: "retries",
    long: "retries",
    type: "int",
    default: 3,
    min: 0,
    max: ESCP_RETRIES_MAX,
    valueName: "N",
    ...cfg("retries"),
    help: "re-establish a dropped data stream, up to N attempts in a row (0: a drop ends the session)",
  },
  {
    field: "resume",
    long: "resume",
    type: "bool",
    default: true,
    negatable: true,
    ...cfg("resume"),
    help: "continue files an earlier run left unfinished (--no-resume: start them over)",
  },
  { field: "manifest", long: "manifest", type: "string", valueName: "FILE", help: "write FILE: a b3sum line per verified file (cd DEST && b3sum -c FILE)" },
  { field: "json", long: "json", type: "bool", default: false, help: "print JSON lines on stdout (start, files, progress, summary) instead of the bar" },
  {
    field: "shards",
    long: "shards",
    type: "int",
    min: 1,
    max: 1_000_000,
    plan: true,
    valueName: "N",
    help: "escp plan: split the copy into N balanced shards",
  },
  {
    field: "planDir",
    long: "plan-dir",
    type: "string",
    default: "escp-plan",
    plan: true,
    valueName: "DIR",
    help: "escp plan: write the plan directory DIR",
  },
  {
    field: "hosts",
    long: "hosts",
    type: "string",
    plan: true,
    valueName: "FILE",
    help: 'escp plan: lines "SRC_HOST DST_HOST" (- = the node the task runs on); shard i uses line i mod count',
  },
  {
    field: "maxParallel",
    long: "max-parallel",
    type: "int",
    min: 1,
    max: 1_000_000,
    plan: true,
    valueName: "M",
    help: "escp plan: run at most M shards at once (default: all)",
  },
  {
    field: "runCmd",
    long: "run-cmd",
    type: "string",
    default: "escp",
    plan: true,
    valueName: "CMD",
    help: "escp plan: the escp command the launch scripts run",
  },
  { field: "force", long: "force", type: "bool", default: false, plan: true, help: "escp plan: replace an existing plan directory" },
  { field: "server", long: "server", type: "bool", default: false, hidden: true, help: "run as the receiver (started by the sender)" },
  {
    field: "restrict",
    long: "restrict",
    type: "string",
    valueName: "DIR",
    ...cfg("restrict"),
    help: "server only: confine every write beneath DIR, paths taken relative to it (for command= keys)",
  },
  { field: "mgmt", long: "mgmt", type: "string", hidden: true, valueName: "PATH", help: "use a Unix socket at PATH instead of SSH (debugging)" },
  { field: "license", long: "license", short: "L", type: "bool", default: false, help: "print the license and exit" },
  { field: "help", long: "help", short: "h", type: "bool", default: false, help: "print this help and exit" },
  { field: "version", long: "version", short: "V", type: "bool", default: false, help: "print the version and exit" },
  { field: "cpumask", type: "string", yamlKey: "cpumask", env: "ESCP_CPUMASK", hidden: true, help: "CPU affinity mask (hex)" },
  { field: "nodemask", type: "string", yamlKey: "nodemask", env: "ESCP_NODEMASK", hidden: true, help: "NUMA node mask (hex)" },
];

/** scp flags accepted for compatibility; each is ignored with this warning. */
export const IGNORED_SCP_FLAGS: ReadonlyMap<string, string> = new Map([
  ["s", "-s ignored: escp does not use the SFTP protocol"],
  ["O", "-O ignored: escp has no legacy SCP protocol mode"],
  ["T", "-T ignored: escp's receiver always validates every file name itself"],
  ["R", "-R ignored: escp copies between two remote hosts as -3 does (relayed through this host, or --direct)"],
]);

export function findLong(name: string): OptionSpec | undefined {
  return OPTION_TABLE.find((o) => o.long === name);
}

export function findShort(ch: string): OptionSpec | undefined {
  return OPTION_TABLE.find((o) => o.short === ch);
}

export function findYamlKey(key: string): OptionSpec | undefined {
  return OPTION_TABLE.find((o) => o.yamlKey === key);
}

/** Store one parsed value into an Options object (the table guarantees the type). */
export function setOption(opts: Options, field: OptionField, value: OptionValue | undefined): void {
  (opts as unknown as Record<string, OptionValue | undefined>)[field] = value;
}

/** A fresh Options holding every table default (optional fields stay unset). */
export function defaultOptions(): Options {
  const opts = { ioengineRx: "posix" } as Options;
  for (const spec of OPTION_TABLE) {
    if (spec.default === undefined) continue;
    const v = Array.isArray(spec.default) ? [...spec.default] : spec.default;
    setOption(opts, spec.field, v);
  }
  return opts;
}
