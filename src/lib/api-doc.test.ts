// docs/api.md's examples are programs: every ```ts block there is run here on its own (its
// `from "escp"` pointed at this checkout's src/lib/index.ts) and must exit 0, so the document
// cannot drift from the library.
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";

const ROOT = resolve(import.meta.dir, "..", "..");
const INDEX = join(ROOT, "src", "lib", "index.ts");

function examples(): string[] {
  const text = readFileSync(join(ROOT, "docs", "api.md"), "utf8");
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
}

test("docs/api.md has examples of copy, send, receive, progress and abort", () => {
  const all = examples().join("\n");
  for (const name of ["copy(", "send(", "receive(", ".progress", "signal"]) expect(all).toContain(name);
});

examples().forEach((code, i) => {
  const first = code.split("\n").find((l) => l.startsWith("import {")) ?? "";
  test(`docs/api.md example ${i + 1} runs (${first.slice(9, 60)})`, async () => {
    const dir = makeTmpDir(`api-doc-${i + 1}`);
    try {
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, code.replaceAll('from "escp"', `from ${JSON.stringify(INDEX)}`));
      const p = Bun.spawn([process.execPath, file], { cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, TMPDIR: dir } });
      const [out, err, status] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (status !== 0) console.error(`example ${i + 1}:\n${out}\n${err}`);
      expect(status).toBe(0);
    } finally {
      removeTmpDir(dir);
    }
  }, 60_000);
});
