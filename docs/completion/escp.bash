# bash completion for escp(1). Generated from src/config/options.ts by `bun harness/gen-files.ts`; do not edit.
# Install: source this file, or copy it to ~/.local/share/bash-completion/completions/escp.

# Hosts named in ~/.ssh/config (no patterns) and in unhashed ~/.ssh/known_hosts lines.
_escp_hosts() {
  local IFS=$' \t\n' f rest h
  if [[ -r ~/.ssh/config ]]; then
    while read -r f rest; do
      case "$f" in [Hh][Oo][Ss][Tt]) ;; *) continue ;; esac
      for h in $rest; do
        case "$h" in *[*?!]*) ;; *) printf '%s\n' "$h" ;; esac
      done
    done < ~/.ssh/config
  fi
  if [[ -r ~/.ssh/known_hosts ]]; then
    while read -r f rest; do
      case "$f" in '#'*|'|'*|@*|'') continue ;; esac
      for h in ${f//,/ }; do
        h="${h#[}"; h="${h%%]*}"
        printf '%s\n' "$h"
      done
    done < ~/.ssh/known_hosts
  fi
}

# COMPREPLY from newline-separated words matching $cur, each followed by a space.
_escp_words() {
  local w
  local IFS=$'\n'
  for w in $1; do
    [[ "$w" == "$cur"* ]] && COMPREPLY+=("$w ")
  done
}

# Local paths: directories end in / (no space), files get a space. -d: directories only.
_escp_local() {
  local p
  local IFS=$'\n'
  for p in $(compgen -f -- "$cur"); do
    if [[ -d "$p" ]]; then COMPREPLY+=("$(printf '%q' "$p")/")
    elif [[ "$1" != -d ]]; then COMPREPLY+=("$(printf '%q' "$p") "); fi
  done
}

# host:path through ssh: ls -d -p on the remote side; directories (marked /) get no space.
_escp_remote() {
  local host="${cur%%:*}" path="${cur#*:}" lead="" q p
  [[ "$path" == "~"* ]] && { lead="${path%%/*}"; [[ "$path" == */* ]] && path="/${path#*/}" || path=""; }
  # single-quoted for the remote shell: ' becomes '\''
  local sq="'" esc="'\\''"
  q="'${path//$sq/$esc}'"
  local IFS=$'\n'
  for p in $(ssh -o BatchMode=yes -o ConnectTimeout=5 "$host" "ls -d -p -- $lead$q*" 2>/dev/null); do
    if [[ "$p" == */ ]]; then COMPREPLY+=("$host:$(printf '%q' "$p")")
    else COMPREPLY+=("$host:$(printf '%q' "$p") "); fi
  done
}

# bash replaces only the text after the last ':' of the word: drop what precedes it.
_escp_trim() {
  if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
    local strip="${cur%"${cur##*:}"}" k
    for k in "${!COMPREPLY[@]}"; do COMPREPLY[k]="${COMPREPLY[k]#"$strip"}"; done
  fi
}

_escp() {
  COMPREPLY=()
  # Rejoin host:path, which bash splits at ':' (COMP_WORDBREAKS) into separate words.
  local i=$COMP_CWORD cur="${COMP_WORDS[COMP_CWORD]}"
  while (( i > 1 )) && { [[ "${COMP_WORDS[i]}" =~ ^:+$ ]] || [[ "${COMP_WORDS[i-1]}" =~ ^:+$ ]]; }; do
    (( i-- ))
    cur="${COMP_WORDS[i]}$cur"
  done
  local prev=""
  (( i > 0 )) && prev="${COMP_WORDS[i-1]}"
  # --opt=value: bash splits at '=' too; the option is the word before it
  [[ "$prev" == "=" ]] && (( i > 1 )) && prev="${COMP_WORDS[i-2]}"
  case "$prev" in
    --ioengine) _escp_words "$(printf '%s\n' posix dummy posix::posix posix::dummy dummy::posix dummy::dummy)"; _escp_trim; return ;;
    --filelist|--shard|--shard-done|--logfile|--profile|-i|--identity|-F|--ssh_config|--manifest|--hosts) _escp_local; _escp_trim; return ;;
    -P|--port|--escp_port|--escp_portrange|-l|--limit|--compress-level|-o|--blocksize|--bundle-max|-t|--parallel|-c|--cipher|--timeout|--numa|--retries|--shards|--max-parallel) :; _escp_trim; return ;;
    -S|--ssh|-D|--escp|--run-cmd) _escp_words "$(compgen -c -- "$cur")"; _escp_trim; return ;;
    -J|--jump_host) _escp_words "$(_escp_hosts)"; _escp_trim; return ;;
    --plan-dir|--restrict) _escp_local -d; _escp_trim; return ;;
  esac
  # escp plan [status|merge]: the subcommand words (docs/scale-out.md)
  if [[ "$cur" != -* ]]; then
    (( i == 1 )) && _escp_words plan
    (( i == 2 )) && [[ "${COMP_WORDS[1]}" == plan ]] && _escp_words "$(printf '%s\n' status merge)"
  fi
  case "$cur" in
    -*) _escp_words "$(printf '%s\n' --filelist --shard --shard-done -P --port --escp_port --escp_portrange -v --verbose --logfile -q --quiet -l --limit -p --preserve -C --compress --compress-level --profile --sparse -r --recursive -a --archive --xattrs -o -S --ssh -D --escp --blocksize --bundle-max --ioengine -t --parallel --bits --nodirect --nochecksum -A --agent -c --cipher -i --identity -F --ssh_config -J --jump_host -B --batch -4 -6 --timeout --builtin-ssh -3 --direct --local-listen --numa --retries --resume --no-resume --manifest --json --shards --plan-dir --hosts --max-parallel --run-cmd --force --restrict -L --license -h --help -V --version)" ;;
    */*:*|./*|/*|~*) _escp_local ;;
    *:*) _escp_remote ;;
    *)
      _escp_local
      local h
      local IFS=$'\n'
      for h in $(_escp_hosts | sort -u); do [[ "$h" == "$cur"* ]] && COMPREPLY+=("$h:"); done
      ;;
  esac
  _escp_trim
  return 0
}
complete -o nospace -F _escp escp
