#!/usr/bin/env bash
# Regenerates the TypeScript FlatBuffers code from escp.fbs (flatc 2.0.8, apt flatbuffers-compiler).
# The output in ./generated is never edited by hand; tsconfig excludes nothing, it compiles as-is.
set -euo pipefail
cd "$(dirname "$0")/../../.."
rm -rf src/control/schema/generated
flatc --ts -o src/control/schema/generated src/control/schema/escp.fbs
