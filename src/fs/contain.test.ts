// Tests for requireInside: symlinks under the destination root may not lead out of it.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireInside } from "./contain.ts";

const tmp = mkdtempSync(join(tmpdir(), "escp-contain-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(tmp, "root");
const away = join(tmp, "away");
mkdirSync(join(root, "real", "deep"), { recursive: true });
mkdirSync(away);
symlinkSync(away, join(root, "out"));
symlinkSync(join(root, "real"), join(root, "in"));
symlinkSync(join(tmp, "nowhere"), join(root, "dangling"));
const realRoot = realpathSync(root);

function code(dir: string): string {
  try {
    requireInside(realRoot, join(root, dir), dir);
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? "?";
  }
}

describe("requireInside", () => {
  test("plain, existing and yet-missing directories inside the root pass", () => {
    expect(code("real")).toBe("ok");
    expect(code("real/deep")).toBe("ok");
    expect(code("new/a/b")).toBe("ok");
  });
  test("a symlink to a directory inside the root passes", () => {
    expect(code("in")).toBe("ok");
    expect(code("in/deep/new")).toBe("ok");
  });
  test("a symlink leading outside is refused, as the last component or on the way", () => {
    expect(code("out")).toBe("E_REJECTED_PATH");
    expect(code("out/x/y")).toBe("E_REJECTED_PATH");
  });
  test("a dangling symlink is refused (its target cannot be checked)", () => {
    expect(code("dangling")).toBe("E_REJECTED_PATH");
    expect(code("dangling/x")).toBe("E_REJECTED_PATH");
  });
  test("the message names the path", () => {
    expect(() => requireInside(realRoot, join(root, "out", "f"), "out/f")).toThrow('refusing unsafe name "out/f": it leads outside the destination through a symlink');
  });
});
