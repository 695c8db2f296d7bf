// The spawned side's control channel (escp --server under ssh or a local pipe): ESCP1 lines on
// process.stdin / process.stdout. Anything else printed to stdout is skipped by the peer's reader.
import { streamChannel, type ControlChannel } from "./channel.ts";

export function serverStdioChannel(): ControlChannel {
  let resolveExited!: (v: number | null) => void;
  const exited = new Promise<number | null>((r) => {
    resolveExited = r;
  });
  const src = Bun.stdin.stream().getReader();
  // A pass-through that notices EOF: the stream keeps one read pending while its queue has
  // room, so `exited` resolves (null) soon after the sender closes our stdin.
  const readable = new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await src.read();
        if (!r.done) return c.enqueue(r.value);
      } catch {
        // stdin failed: treat as closed
      }
      c.close();
      resolveExited(null);
    },
    async cancel() {
      await src.cancel().catch(() => undefined);
      resolveExited(null);
    },
  });
  return streamChannel({
    readable,
    write: (line) =>
      new Promise<void>((resolve, reject) => {
        process.stdout.write(line, (err) => (err ? reject(err) : resolve()));
      }),
    exited,
    async shutdown() {
      resolveExited(null);
    },
  });
}
