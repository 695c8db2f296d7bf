// Unique temp directories under os.tmpdir() (ext4 /tmp here: O_DIRECT is really exercised)
// and one process-exit cleanup registry that every harness fixture shares.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

type CleanupFn = () => void;

const cleanups = new Set<CleanupFn>();
let hooked = false;

function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // Best effort at exit: one failed cleanup must not skip the others.
    }
  }
}

function hookProcessExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", runCleanups);
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    process.once(signal, () => {
      runCleanups();
      process.exit(code);
    });
  }
}

/** Registers a synchronous cleanup run at process exit (or SIGINT/SIGTERM/SIGHUP);
 *  returns a function that unregisters it (call it once you cleaned up yourself). */
export function onExitCleanup(fn: CleanupFn): () => void {
  hookProcessExit();
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

const unregisterByDir = new Map<string, () => void>();

/** Creates a fresh directory `<tmpdir>/escp-<tag>-XXXXXX`, removed at process exit unless
 *  removed earlier with removeTmpDir or ESCP_KEEP_TMP=1 is set (for post-mortems). */
export function makeTmpDir(tag: string): string {
  const safeTag = tag.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40) || "tmp";
  const dir = mkdtempSync(join(tmpdir(), `escp-${safeTag}-`));
  if (process.env.ESCP_KEEP_TMP !== "1") {
    unregisterByDir.set(
      dir,
      onExitCleanup(() => rmSync(dir, { recursive: true, force: true })),
    );
  }
  return dir;
}

/** Removes a directory made by makeTmpDir (or any path) and drops its exit registration. */
export function removeTmpDir(dir: string): void {
  unregisterByDir.get(dir)?.();
  unregisterByDir.delete(dir);
  if (process.env.ESCP_KEEP_TMP === "1") return;
  rmSync(dir, { recursive: true, force: true });
}
