// Builds harness/wan/delayline.c into harness/wan/build/delayline (gitignored) when the
// binary is missing or older than its source. Safe to call from parallel test files: the
// compiler writes a private temp file that is renamed into place.
// Usage as a script: bun harness/wan/build.ts   (prints the binary's path)
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

export const WAN_DIR = import.meta.dir;
export const DELAYLINE_SRC = join(WAN_DIR, "delayline.c");
export const DELAYLINE_BIN = join(WAN_DIR, "build", "delayline");

export const CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11"];

function upToDate(): boolean {
  return existsSync(DELAYLINE_BIN) && statSync(DELAYLINE_BIN).mtimeMs >= statSync(DELAYLINE_SRC).mtimeMs;
}

/** Returns the delay line's path, compiling it first if needed (throws with gcc's output). */
export async function buildDelayline(): Promise<string> {
  if (upToDate()) return DELAYLINE_BIN;
  mkdirSync(join(WAN_DIR, "build"), { recursive: true });
  const tmp = `${DELAYLINE_BIN}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  const gcc = Bun.spawn(["gcc", ...CFLAGS, "-o", tmp, DELAYLINE_SRC], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(gcc.stdout).text(), new Response(gcc.stderr).text(), gcc.exited]);
  if (code !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`gcc ${CFLAGS.join(" ")} delayline.c failed (exit ${code}):\n${out}${err}`);
  }
  renameSync(tmp, DELAYLINE_BIN);
  return DELAYLINE_BIN;
}

if (import.meta.main) console.log(await buildDelayline());
