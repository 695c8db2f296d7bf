// Test fixture (not a test): writes a tiny escp-like peer script that serves serverStdioChannel,
// echoing each message reversed; [0xff] makes it exit 3 after writing "bye" to stderr.
import * as fs from "node:fs";
import * as path from "node:path";

const STDIO = path.join(import.meta.dir, "stdio.ts");

export function writeEchoPeer(dir: string): string {
  const file = path.join(dir, "echo-peer.ts");
  fs.writeFileSync(
    file,
    `
import { serverStdioChannel } from ${JSON.stringify(STDIO)};
process.stdout.write("rc-file noise on stdout\\n");
const ch = serverStdioChannel();
for (;;) {
  let b: Uint8Array;
  try { b = await ch.recv(20000); } catch { break; }
  if (b.length === 1 && b[0] === 0xff) { process.stderr.write("bye\\n"); process.exit(3); }
  await ch.send(b.slice().reverse());
}
await ch.close();
`,
  );
  return file;
}
