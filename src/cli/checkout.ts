// Which development checkout this escp runs from, for --version. Only a git checkout (a `.git`
// entry at the repository root) answers; an installed package prints nothing extra. With several
// checkouts on one machine, /usr/local/bin/escp (harness/setup.sh's wrapper) serves the remote side
// of every loopback transfer, so `escp --version` must say whose code that is.
import { existsSync } from "node:fs";
import { join } from "node:path";

/** The repository root of this source tree. */
export const CHECKOUT_ROOT = join(import.meta.dir, "..", "..");

/** "checkout /path (git abc1234)", or undefined outside a git checkout. */
export function checkoutText(root: string = CHECKOUT_ROOT): string | undefined {
  if (!existsSync(join(root, ".git"))) return undefined;
  let commit = "commit unknown";
  try {
    const p = Bun.spawnSync(["git", "-C", root, "rev-parse", "--short=12", "HEAD"], { stdout: "pipe", stderr: "ignore" });
    const sha = p.stdout.toString().trim();
    if (p.exitCode === 0 && /^[0-9a-f]+$/.test(sha)) commit = sha;
  } catch {
    // git missing: the path alone still names the checkout
  }
  return `checkout ${root} (git ${commit})`;
}
