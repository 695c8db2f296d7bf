#!/usr/bin/env bash
# One-command setup of a fresh Debian 12 (root, Node 20 + npm): apt packages, Bun 1.4, npm
# packages, the native library, an `escp` wrapper on PATH, then the demo. Safe to re-run.
# Usage: bash harness/setup.sh [--no-demo]
set -Eeuo pipefail  # -E: the ERR trap below also fires inside functions

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUN_VERSION="1.4.4"
# Project needs (README) plus the base toolchain a fresh machine already has: checking costs nothing.
# libclang-rt-14-dev holds libFuzzer and the sanitizer runtimes clang links the fuzz target
# with; it is only a Recommends of clang, and we install without recommends.
APT_PACKAGES=(libzstd-dev openssh-server b3sum flatbuffers-compiler rsync iperf3 clang libclang-rt-14-dev
              build-essential libssl-dev openssh-client python3 iproute2 util-linux zsh groff-base)
WRAPPER=/usr/local/bin/escp
# Slurm and GNU parallel: what `escp plan`'s launch scripts drive, and their test fixtures
# (harness/slurm/local.ts, harness/suites/parallel-sshlogin.e2e.test.ts). The fixtures run
# their own munged/slurmctld/slurmd (own socket, ports, scratch dir), never the system's; on
# a systemd machine the packaged slurmctld/slurmd units do not start (no /etc/slurm/slurm.conf).
APT_PACKAGES+=(slurmctld slurmd slurm-client munge parallel)

DEMO=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) DEMO=0 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument: $arg (usage: bash harness/setup.sh [--no-demo])" >&2; exit 2 ;;
  esac
done

STEP="start"
trap 'echo "setup: FAILED at step: $STEP (exit $?)" >&2' ERR
step() { STEP="$1"; echo "setup: $1"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: must run as root (or with sudo available)" >&2; exit 1; }
  SUDO="sudo"
fi

# True when dpkg records the package as fully installed ("deinstall ... config-files" is not).
is_installed() {
  local status
  status="$(dpkg -s "$1" 2>/dev/null)" || return 1
  [[ "$status" == *$'\nStatus: install ok installed'* ]]
}

step "apt packages"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup:   installing ${missing[*]}"
  apt_log="$(mktemp)"
  # Quiet unless it fails: then the whole apt output is shown.
  if ! { $SUDO apt-get update -qq &&
         $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Use-Pty=0 "${missing[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2; rm -f "$apt_log"; false
  fi
  rm -f "$apt_log"
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || { echo "setup: apt did not install $pkg" >&2; false; }
  done
else
  echo "setup:   all present"
fi

step "bun ${BUN_VERSION}"
bun_ok() { command -v bun >/dev/null && [[ "$(bun --version 2>/dev/null)" == 1.4.* ]]; }
if bun_ok; then
  echo "setup:   bun $(bun --version) present"
else
  # npm 11 runs a dependency's install script only when allowed; bun's postinstall puts the
  # real binary in place (without it `bun` is a stub that exits 1), so allow it by name.
  $SUDO npm install -g "bun@${BUN_VERSION}" --allow-scripts=bun --no-audit --no-fund --loglevel=error
  # npm's global bin first, so an older bun elsewhere on PATH cannot shadow the new one.
  PATH="$(npm prefix -g)/bin:$PATH"
  export PATH
  hash -r
  bun_ok || { echo "setup: bun --version does not run after npm install -g bun@${BUN_VERSION}" >&2; false; }
  echo "setup:   bun $(bun --version) installed"
fi

step "npm packages"
# zstd-napi builds against the local Node headers (no header download offline).
export npm_config_nodedir=/usr
cd "$REPO"
# Up to date = every locked package is on disk at its locked version and the zstd-napi
# addon loads; then `npm ci` (which wipes node_modules first) is skipped.
node_modules_current() {
  [ -f package-lock.json ] && [ -d node_modules ] && node - <<'JS' >/dev/null 2>&1
const fs = require("fs");
const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
for (const [path, meta] of Object.entries(lock.packages ?? {})) {
  if (path === "" || meta.link) continue;
  if (!fs.existsSync(`${path}/package.json`)) { if (meta.optional) continue; process.exit(1); }
  if (JSON.parse(fs.readFileSync(`${path}/package.json`, "utf8")).version !== meta.version) process.exit(1);
}
require("zstd-napi");
JS
}
if node_modules_current; then
  echo "setup:   node_modules up to date"
elif [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

step "native build (make -C native)"
make -s -C "$REPO/native"

step "escp wrapper ($WRAPPER)"
# One wrapper serves every checkout on this machine (it is also what ssh runs on the loopback
# "remote"), so it names its checkout, `escp --version` prints that checkout, and re-pointing it
# at another checkout is announced rather than silent (old → new), never refused: a second
# clone's setup still ends with a working escp. -D <checkout>/src/cli/main.ts picks one per run.
# Absolute bun path: ssh sessions on the loopback "remote" get a minimal PATH.
# A checkout that was removed since (a CI clone, a deleted worktree) gets one clear line, exit 127.
# Paths are single-quoted for sh (a quote inside one becomes '\'').
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
wrapper_text="#!/bin/sh
# escp development wrapper (harness/setup.sh); checkout: $REPO
[ -f $(shq "$REPO/src/cli/main.ts") ] || { echo $(shq "escp: this wrapper ($WRAPPER) runs the checkout $REPO, which is gone: run npm run setup in a checkout") >&2; exit 127; }
exec $(shq "$(command -v bun)") $(shq "$REPO/src/cli/main.ts") \"\$@\""
if [ "$(cat "$WRAPPER" 2>/dev/null)" != "$wrapper_text" ]; then
  old_checkout=""
  if [ -f "$WRAPPER" ]; then
    # this format's comment line, else an older wrapper's exec line (…/src/cli/main.ts)
    old_checkout="$(sed -n 's/^# escp development wrapper.*; checkout: //p' "$WRAPPER" | head -n 1)"
    [ -n "$old_checkout" ] || old_checkout="$(sed -n "s|^exec '*[^ ]* '*\(.*\)/src/cli/main\.ts'* .*|\1|p" "$WRAPPER" | head -n 1)"
  fi
  if [ -n "$old_checkout" ] && [ "$old_checkout" != "$REPO" ]; then
    echo "setup: NOTE: $WRAPPER switches checkout: $old_checkout → $REPO (escp on PATH, and over ssh to this host, now runs this checkout)"
  fi
  printf '%s\n' "$wrapper_text" | $SUDO tee "$WRAPPER" >/dev/null
  $SUDO chmod 755 "$WRAPPER"
fi
command -v escp >/dev/null || { echo "setup: escp is not on PATH ($WRAPPER)" >&2; false; }

if [ "$DEMO" = 1 ]; then
  step "demo (bun harness/demo.ts)"
  bun "$REPO/harness/demo.ts"
fi
STEP="done"
echo "setup: done"
