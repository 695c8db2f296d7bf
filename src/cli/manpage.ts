// escp(1) in roff (man macros), generated from the option table, the usage line and the error
// code table. harness/gen-files.ts writes it to docs/escp.1; nothing there is hand-edited.
import { OPTION_TABLE } from "../config/options.ts";
import { ERROR_CODES } from "../errors/codes.ts";
import { defaultText, flagColumn, USAGE_LINE } from "./usage.ts";

/** Text safe in a roff line: backslash as \e, hyphens as \-, non-ASCII as \[uXXXX], no leading . or '. */
export function roffEscape(s: string): string {
  const t = s
    .replace(/\\/g, "\\e")
    .replace(/-/g, "\\-")
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}]`);
  return /^[.']/.test(t) ? `\\&${t}` : t;
}

function synopsis(): string[] {
  // USAGE_LINE: "usage: escp A  or  escp B" — one SYNOPSIS line per form.
  const forms = USAGE_LINE.replace(/^usage:\s*/, "").split(/\s{2,}or\s{2,}/);
  return forms.flatMap((f, i) => [...(i > 0 ? [".br"] : []), roffEscape(f)]);
}

function options(): string[] {
  const rows = OPTION_TABLE.filter((s) => s.hidden !== true && (s.long !== undefined || s.short !== undefined));
  return rows.flatMap((s) => {
    const env = s.env !== undefined ? ` Environment: ${s.env}; config key: ${s.yamlKey ?? ""}.` : "";
    return [".TP", `.B ${roffEscape(flagColumn(s))}`, roffEscape(`${s.help}${defaultText(s)}.${env}`)];
  });
}

function exitStatus(): string[] {
  const byExit = new Map<number, string[]>();
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    byExit.set(info.exit, [...(byExit.get(info.exit) ?? []), `${code}: ${info.meaning}`]);
  }
  const lines = [".TP", ".B 0", "every file was copied and verified."];
  for (const exit of [...byExit.keys()].sort((a, b) => a - b)) {
    const meanings = byExit.get(exit) ?? [];
    lines.push(".TP", `.B ${exit}`, ...meanings.flatMap((m, i) => [...(i > 0 ? [".br"] : []), roffEscape(m)]));
  }
  return lines;
}

const EXAMPLES: readonly [string, string][] = [
  ["Copy a file to a remote home directory:", "escp big.iso alice@host:"],
  ["Copy a directory tree with 8 streams, preserving modes and times:", "escp \\-rp \\-t 8 data/ host:/srv/data/"],
  ["Fetch from a remote host, compressed and paced to 100 Mbit/s per stream:", "escp \\-C \\-l 100Mbit host:/var/log/app.log ."],
  ["Copy between two remote hosts through this one:", "escp \\-3 src:/data/a dst:/data/"],
  ["A local copy (the same engine, receiver on this machine):", "escp \\-r /mnt/a /mnt/b"],
];

/** The whole man page, ending in a newline. */
export function manPage(): string {
  return [
    '.\\" Generated from src/config/options.ts, src/cli/usage.ts and src/errors/codes.ts',
    '.\\" by `bun harness/gen-files.ts`; do not edit.',
    '.TH ESCP 1 "" "escp" "User Commands"',
    ".SH NAME",
    "escp \\- high\\-speed, encrypted, multi\\-stream file transfer",
    ".SH SYNOPSIS",
    ...synopsis(),
    ".SH DESCRIPTION",
    ".B escp",
    roffEscape(
      "copies files to and from [user@]host:[path] (also [user@][ipv6]:path or scp://[user@]host[:port][/path]) like scp(1): SSH carries the control session, and the data travels over parallel TCP streams encrypted with keys agreed over SSH. Every file is verified end to end with BLAKE3 unless --nochecksum is given.",
    ),
    ".PP",
    roffEscape(
      "A destination without host: is local: the same engine runs with a receiver started on this machine. The remote host needs escp on its PATH (or named with -D).",
    ),
    ".SH OPTIONS",
    ...options(),
    ".SH ENVIRONMENT",
    roffEscape(
      "Most options can also be set as ESCP_<KEY>, where <KEY> is the configuration key named with each option above. The command line wins over the environment, which wins over the configuration file.",
    ),
    ".TP",
    ".B ESCP_CONFIG",
    roffEscape("path of the configuration file read instead of /etc/escp.conf."),
    ".SH FILES",
    ".TP",
    ".I /etc/escp.conf",
    roffEscape("YAML configuration: <key>: value per option (threads for -t, ssh_options for -o as a list)."),
    ".SH EXIT STATUS",
    roffEscape("With --json the code names below appear in the error records."),
    ...exitStatus(),
    ".SH EXAMPLES",
    ...EXAMPLES.flatMap(([what, cmd]) => [".PP", roffEscape(what), ".PP", ".RS", ".B " + cmd, ".RE"]),
    ".SH SEE ALSO",
    ".BR scp (1),",
    ".BR ssh (1),",
    ".BR ssh_config (5),",
    ".BR b3sum (1)",
    "",
  ].join("\n");
}
