// Text for --help (generated from the option table; hidden options omitted), the usage
// line, --version and -L/--license. Returns strings; the caller prints them via progress.term.
import pkg from "../../package.json" with { type: "json" };
import { OPTION_TABLE, type OptionSpec } from "../config/options.ts";
import { formatSizeUnit } from "../config/values.ts";
import { PROTOCOL_MAJOR, PROTOCOL_MINOR } from "../control/messages.ts";

export const USAGE_LINE =
  "usage: escp [OPTIONS] SOURCE... [user@]host:[path]|LOCAL_PATH  or  escp [OPTIONS] --filelist FILE [user@]host:[path]|LOCAL_PATH  or  escp plan [OPTIONS] --shards N SOURCE... DEST  or  escp plan status|merge PLAN_DIR";

/** Wire protocol version advertised by --version: the session-init major.minor (docs/protocol.md). */
export const PROTOCOL_VERSION = `${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}`;

/** The --help flag column for one option: "-t, --parallel N" (also used by the man page). */
export function flagColumn(spec: OptionSpec): string {
  const names: string[] = [];
  if (spec.short !== undefined) names.push(`-${spec.short}`);
  if (spec.long !== undefined) names.push(`--${spec.long}`);
  if (spec.long !== undefined && spec.negatable === true) names.push(`--no-${spec.long}`);
  const value = spec.type === "bool" ? "" : ` ${spec.valueName ?? "VALUE"}`;
  return `${names.join(", ")}${value}`;
}

/** " (default X)" for one option, or "" when it has none worth showing (also used by the man page). */
export function defaultText(spec: OptionSpec): string {
  const d = spec.default;
  if (d === undefined || d === false || (Array.isArray(d) && d.length === 0)) return "";
  if (spec.type === "size" && typeof d === "number") return ` (default ${formatSizeUnit(d)})`;
  if (typeof d === "number") return ` (default ${d / (spec.scale ?? 1)})`;
  return ` (default ${String(d)})`;
}

/** Full --help text (no trailing newline: term.info adds it). */
export function helpText(): string {
  const rows = OPTION_TABLE.filter((s) => s.hidden !== true && (s.long !== undefined || s.short !== undefined));
  const lines = rows.map((s) => `  ${flagColumn(s).padEnd(26)} ${s.help}${defaultText(s)}`);
  return [
    USAGE_LINE,
    "",
    "Copies files to [user@]host:[path] (also [user@][ipv6]:path or scp://[user@]host[:port][/path])",
    "over SSH for control and parallel encrypted TCP streams for data. A destination without",
    "host: is local: the same engine runs with a receiver started on this machine.",
    "`escp plan` splits a copy into shards for Slurm or GNU parallel (docs/scale-out.md); a file",
    "named plan is copied as ./plan.",
    "",
    "Options:",
    ...lines,
    "",
    "Most options can also be set in the environment as ESCP_<KEY> or in /etc/escp.conf",
    "(YAML, path overridable with ESCP_CONFIG) as <key>: value, where <key> is the long name",
    "(threads for -t, ssh_options for -o, ipv4/ipv6, batch). Command line > env > file.",
  ].join("\n");
}

function packageVersion(): string {
  // A static import: bundled into a compiled executable, which has no package.json beside it.
  const v: unknown = (pkg as { version?: unknown }).version;
  return typeof v === "string" ? v : "unknown";
}

/** --version text, one line without a newline. */
export function versionText(version: string = packageVersion()): string {
  return `escp ${version} (protocol ${PROTOCOL_VERSION})`;
}

/** -L/--license text (BSD-3-Clause), without a trailing newline. */
export function licenseText(): string {
  return `BSD 3-Clause License

Copyright (c) 2026, the escp authors

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.`;
}
