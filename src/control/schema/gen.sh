#!/usr/bin/env bash
# Regenerates ./generated from escp.fbs: flatc's TypeScript (flatc 2.0.8, apt flatbuffers-compiler)
# and the verifier field tables (gen-verify.ts). Nothing in ./generated is edited by hand.
# Usage: gen.sh [--check]   --check regenerates into a temp dir and fails if ./generated differs.
# ESCP_SCHEMA_DIR (tests only) points at another directory holding escp.fbs and generated/;
# BUN names the bun binary when it is not on PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
schema_dir="${ESCP_SCHEMA_DIR:-$here}"
out="$schema_dir/generated"

FLATC_VERSION="flatc version 2.0.8" # other versions emit different TypeScript
if [ "$(flatc --version)" != "$FLATC_VERSION" ]; then
  echo "gen.sh: $FLATC_VERSION is required (apt flatbuffers-compiler), found: $(flatc --version 2>&1 || true)" >&2
  exit 1
fi

generate() { # <into dir>
  flatc --ts -o "$1" "$schema_dir/escp.fbs"
  "${BUN:-bun}" "$here/gen-verify.ts" "$schema_dir/escp.fbs" "$1/verify-tables.ts"
}

case "${1:-}" in
  "")
    rm -rf "$out"
    generate "$out"
    ;;
  --check)
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp"
    if ! diff -r "$tmp" "$out" >&2; then
      echo "gen.sh --check: $out is stale against escp.fbs; run src/control/schema/gen.sh and commit the result" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: gen.sh [--check]" >&2
    exit 2
    ;;
esac
