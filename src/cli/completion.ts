// Shell completion scripts for bash and zsh, generated from the option table (hidden options
// left out). harness/gen-files.ts writes them to docs/completion/; nothing there is hand-edited.
// What completes: every flag; FILE/PATH/DIR values as local paths, BIN/CMD as commands, HOST as
// ssh hosts, enum values (ioengine also as TX::RX); operands as local paths, `host:` from
// ~/.ssh/config and known_hosts, and `host:path` by listing the remote side through ssh.
import { OPTION_TABLE, type OptionSpec } from "../config/options.ts";

export type ValueKind = "file" | "dir" | "command" | "host" | "choice" | "none";

const VISIBLE: readonly OptionSpec[] = OPTION_TABLE.filter((s) => s.hidden !== true && (s.long !== undefined || s.short !== undefined));

/** Every spelling of a visible option, as typed: "-t", "--parallel", "--no-resume". */
export function flagNames(spec: OptionSpec): string[] {
  const names: string[] = [];
  if (spec.short !== undefined) names.push(`-${spec.short}`);
  if (spec.long !== undefined) names.push(`--${spec.long}`);
  if (spec.long !== undefined && spec.negatable === true) names.push(`--no-${spec.long}`);
  return names;
}

/** What the word after a value-taking option completes to. */
export function valueKind(spec: OptionSpec): ValueKind {
  if (spec.choices !== undefined) return "choice";
  switch (spec.valueName) {
    case "FILE":
    case "PATH":
      return "file";
    case "DIR":
      return "dir";
    case "BIN":
    case "CMD":
      return "command";
    case "HOST":
      return "host";
    default:
      return "none";
  }
}

/** The enum's values; a valueName like E[::E] also allows TX::RX pairs. */
export function choiceWords(spec: OptionSpec): string[] {
  const c = [...(spec.choices ?? [])];
  if (!(spec.valueName ?? "").includes("::")) return c;
  return [...c, ...c.flatMap((tx) => c.map((rx) => `${tx}::${rx}`))];
}

function takesValue(spec: OptionSpec): boolean {
  return spec.type !== "bool";
}

const HEADER = "Generated from src/config/options.ts by `bun harness/gen-files.ts`; do not edit.";

/** bash: `source` it (or drop it in bash-completion's completions dir as `escp`). */
export function bashCompletion(): string {
  const flags = VISIBLE.flatMap(flagNames).join(" ");
  const cases: string[] = [];
  const byKind = new Map<string, string[]>();
  for (const spec of VISIBLE.filter(takesValue)) {
    const kind = valueKind(spec);
    if (kind === "choice") {
      cases.push(`    ${flagNames(spec).join("|")}) _escp_words "$(printf '%s\\n' ${choiceWords(spec).join(" ")})"; _escp_trim; return ;;`);
      continue;
    }
    byKind.set(kind, [...(byKind.get(kind) ?? []), ...flagNames(spec)]);
  }
  const action: Record<string, string> = {
    file: "_escp_local",
    dir: "_escp_local -d",
    command: '_escp_words "$(compgen -c -- "$cur")"',
    host: '_escp_words "$(_escp_hosts)"',
    none: ":",
  };
  for (const [kind, names] of byKind) cases.push(`    ${names.join("|")}) ${action[kind]}; _escp_trim; return ;;`);
  return `# bash completion for escp(1). ${HEADER}
# Install: source this file, or copy it to ~/.local/share/bash-completion/completions/escp.

# Hosts named in ~/.ssh/config (no patterns) and in unhashed ~/.ssh/known_hosts lines.
_escp_hosts() {
  local IFS=$' \\t\\n' f rest h
  if [[ -r ~/.ssh/config ]]; then
    while read -r f rest; do
      case "$f" in [Hh][Oo][Ss][Tt]) ;; *) continue ;; esac
      for h in $rest; do
        case "$h" in *[*?!]*) ;; *) printf '%s\\n' "$h" ;; esac
      done
    done < ~/.ssh/config
  fi
  if [[ -r ~/.ssh/known_hosts ]]; then
    while read -r f rest; do
      case "$f" in '#'*|'|'*|@*|'') continue ;; esac
      for h in \${f//,/ }; do
        h="\${h#[}"; h="\${h%%]*}"
        printf '%s\\n' "$h"
      done
    done < ~/.ssh/known_hosts
  fi
}

# COMPREPLY from newline-separated words matching $cur, each followed by a space.
_escp_words() {
  local w
  local IFS=$'\\n'
  for w in $1; do
    [[ "$w" == "$cur"* ]] && COMPREPLY+=("$w ")
  done
}

# Local paths: directories end in / (no space), files get a space. -d: directories only.
_escp_local() {
  local p
  local IFS=$'\\n'
  for p in $(compgen -f -- "$cur"); do
    if [[ -d "$p" ]]; then COMPREPLY+=("$(printf '%q' "$p")/")
    elif [[ "$1" != -d ]]; then COMPREPLY+=("$(printf '%q' "$p") "); fi
  done
}

# host:path through ssh: ls -d -p on the remote side; directories (marked /) get no space.
_escp_remote() {
  local host="\${cur%%:*}" path="\${cur#*:}" lead="" q p
  [[ "$path" == "~"* ]] && { lead="\${path%%/*}"; [[ "$path" == */* ]] && path="/\${path#*/}" || path=""; }
  # single-quoted for the remote shell: ' becomes '\\''
  local sq="'" esc="'\\\\''"
  q="'\${path//$sq/$esc}'"
  local IFS=$'\\n'
  for p in $(ssh -o BatchMode=yes -o ConnectTimeout=5 "$host" "ls -d -p -- $lead$q*" 2>/dev/null); do
    if [[ "$p" == */ ]]; then COMPREPLY+=("$host:$(printf '%q' "$p")")
    else COMPREPLY+=("$host:$(printf '%q' "$p") "); fi
  done
}

# bash replaces only the text after the last ':' of the word: drop what precedes it.
_escp_trim() {
  if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
    local strip="\${cur%"\${cur##*:}"}" k
    for k in "\${!COMPREPLY[@]}"; do COMPREPLY[k]="\${COMPREPLY[k]#"$strip"}"; done
  fi
}

_escp() {
  COMPREPLY=()
  # Rejoin host:path, which bash splits at ':' (COMP_WORDBREAKS) into separate words.
  local i=$COMP_CWORD cur="\${COMP_WORDS[COMP_CWORD]}"
  while (( i > 1 )) && { [[ "\${COMP_WORDS[i]}" =~ ^:+$ ]] || [[ "\${COMP_WORDS[i-1]}" =~ ^:+$ ]]; }; do
    (( i-- ))
    cur="\${COMP_WORDS[i]}$cur"
  done
  local prev=""
  (( i > 0 )) && prev="\${COMP_WORDS[i-1]}"
  # --opt=value: bash splits at '=' too; the option is the word before it
  [[ "$prev" == "=" ]] && (( i > 1 )) && prev="\${COMP_WORDS[i-2]}"
  case "$prev" in
${cases.join("\n")}
  esac
  # escp plan [status|merge]: the subcommand words (docs/scale-out.md)
  if [[ "$cur" != -* ]]; then
    (( i == 1 )) && _escp_words plan
    (( i == 2 )) && [[ "\${COMP_WORDS[1]}" == plan ]] && _escp_words "$(printf '%s\\n' status merge)"
  fi
  case "$cur" in
    -*) _escp_words "$(printf '%s\\n' ${flags})" ;;
    */*:*|./*|/*|~*) _escp_local ;;
    *:*) _escp_remote ;;
    *)
      _escp_local
      local h
      local IFS=$'\\n'
      for h in $(_escp_hosts | sort -u); do [[ "$h" == "$cur"* ]] && COMPREPLY+=("$h:"); done
      ;;
  esac
  _escp_trim
  return 0
}
complete -o nospace -F _escp escp
`;
}

/** zsh text inside '…' after escaping: help lines in _arguments specs. */
function zshDescription(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\[/g, "\\[").replace(/\]/g, "\\]").replace(/:/g, "\\:").replace(/'/g, "'\\''");
}

/** zsh: put the file on $fpath as _escp (compinit picks it up), or `source` it after compinit. */
export function zshCompletion(): string {
  const specs: string[] = [];
  for (const spec of VISIBLE) {
    const help = zshDescription(spec.help);
    let action = "";
    if (takesValue(spec)) {
      const kind = valueKind(spec);
      const value = zshDescription(spec.valueName ?? "VALUE");
      const act =
        kind === "choice"
          ? `(${choiceWords(spec)
              .map((w) => w.replace(/:/g, "\\:"))
              .join(" ")})`
          : kind === "file"
            ? "_files"
            : kind === "dir"
              ? "_files -/"
              : kind === "command"
                ? "_command_names -e"
                : kind === "host"
                  ? "_hosts"
                  : " ";
      action = `:${value}:${act}`;
    }
    for (const name of flagNames(spec)) specs.push(`    '${name}[${help}]${action}'`);
  }
  return `#compdef escp
# zsh completion for escp(1). ${HEADER}

# host:path through ssh: ls -d -p on the remote side; directories (marked /) take no suffix.
_escp_remote() {
  local host=\${PREFIX%%:*} rpath=\${PREFIX#*:} lead= q
  if [[ $rpath == '~'* ]]; then  # (not $path: zsh ties it to $PATH)
    lead=\${rpath%%/*}
    if [[ $rpath == */* ]]; then rpath=/\${rpath#*/}; else rpath=; fi
  fi
  local sq="'" esc="'\\\\''"
  q="'\${rpath//$sq/$esc}'"
  local -a entries dirs files
  entries=(\${(f)"$(ssh -o BatchMode=yes -o ConnectTimeout=5 $host "ls -d -p -- $lead$q*" 2>/dev/null)"})
  dirs=(\${(M)entries:#*/})
  files=(\${entries:#*/})
  compset -P '*:'
  (( $#dirs )) && compadd -Q -S '' -- \${(q)dirs}
  (( $#files )) && compadd -Q -- \${(q)files}
}

_escp_operand() {
  # escp plan [status|merge]: the subcommand words (docs/scale-out.md)
  (( CURRENT == 2 )) && compadd -- plan
  (( CURRENT == 3 )) && [[ $words[2] == plan ]] && compadd -- status merge
  if [[ $PREFIX == *:* && $PREFIX != */*:* && $PREFIX != [./~]* ]]; then
    _escp_remote
  else
    _alternative 'files:file:_files' 'hosts:host:_hosts -S :'
  fi
}

_arguments -s -S \\
${specs.join(" \\\n")} \\
    '*:source or destination ([user@]host\\:path or local path):_escp_operand'
`;
}
