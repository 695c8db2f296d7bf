// Locates, loads and ABI-checks libescp.so; the one door between TypeScript and C.
// Symbols and constants come from src/native/symbols.ts, generated from native/include/escp.h.
import { dlopen } from "bun:ffi";
import { existsSync } from "node:fs";
import { EscpError } from "../errors/escp-error.ts";
import { defaultLibraryPath } from "../runtime/self.ts";
import { ESCP_ABI_VERSION, EVENT_SIZE, symbols } from "./symbols.ts";

export type NativeLib = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

export { REPO_ROOT } from "../runtime/self.ts";
let cached: NativeLib | undefined;

/** Path of the shared library: $ESCP_LIBESCP wins (ASan or fault-injection builds), else
 *  the checkout's build or, compiled, the installed private copy (src/runtime/self.ts). */
export function libraryPath(): string {
  return process.env.ESCP_LIBESCP ?? defaultLibraryPath();
}

export function loadNative(): NativeLib {
  if (cached) return cached;
  const path = libraryPath();
  if (!existsSync(path)) {
    throw new EscpError("E_NATIVE", `native library ${path} is missing: run \`npm run setup\` or \`make -C native\``);
  }
  let lib: NativeLib;
  try {
    lib = dlopen(path, symbols).symbols;
  } catch (e) {
    throw new EscpError("E_NATIVE", `cannot load ${path}: ${(e as Error).message}`, { cause: e });
  }
  const abi = lib.escp_abi_version();
  if (abi !== ESCP_ABI_VERSION || lib.escp_event_size() !== EVENT_SIZE) {
    throw new EscpError(
      "E_NATIVE",
      `${path} has ABI ${abi} (event ${lib.escp_event_size()} B), escp expects ABI ${ESCP_ABI_VERSION} (event ${EVENT_SIZE} B): rebuild with \`make -C native\``,
    );
  }
  cached = lib;
  return lib;
}

/** NUL-terminated UTF-8 copy of a string for a `const char *` argument. */
export function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}
