// A per-stream TCP fault proxy for loopback tests. The sender is pointed at it with
// ESCP_FAULT_DATA_PORT=<proxy port> (src/transfer/fault-points.ts); the proxy pipes each
// accepted connection to the receiver's real data port. Connections are numbered in accept
// order — the sender connects them in order, so 0 = control stream, 1..T = data streams.
//
// A StreamFault names one connection (`stream`) and acts on its client→server direction once
// `afterBytes` bytes have passed (server→client is always piped untouched):
//   delay      add `ms` before forwarding every chunk from then on
//   delayDown  the same on the server→client direction, from its first byte (`afterBytes`
//              is ignored): a pull's data, which then arrives late on this one stream
//   throttle   forward at most `bytesPerSec` bytes/s from then on
//   rst        reset (RST) both sockets abruptly
//   halfclose  forward up to afterBytes, then end (FIN) the client→server direction only;
//              the server→client direction stays open
//   truncate   forward up to afterBytes, then silently drop everything; both stay open
//   bitflip    flip bit `bit` (default 0) of the byte at offset afterBytes
//   replay     at the first chunk boundary at or past afterBytes, send the previous
//              chunk again (a duplicated TCP segment's worth of bytes), then carry on
// Usage: const p = await startProxy({ target: { host: "127.0.0.1", port }, faults: [...] });
//        ... connect to p.port ...; p.stats; await p.stop();
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type StreamFault = { stream: number; afterBytes: number } & (
  | { kind: "delay"; ms: number }
  | { kind: "delayDown"; ms: number }
  | { kind: "throttle"; bytesPerSec: number }
  | { kind: "rst" }
  | { kind: "halfclose" }
  | { kind: "truncate" }
  | { kind: "bitflip"; bit?: number }
  | { kind: "replay" }
  | { kind: "hold"; until: (head: Uint8Array) => Promise<void> }
);

export interface ConnStats {
  index: number;
  up: number; // client→server bytes forwarded
  down: number; // server→client bytes forwarded
  fired: string[]; // faults that took effect on this connection
}

export interface ProxyStats {
  accepted: number;
  conns: ConnStats[];
}

export interface Proxy {
  port: number;
  stats: ProxyStats;
  stop(): Promise<void>;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes with backpressure; resolves when the socket can take more (or has gone). */
function send(to: Socket, b: Uint8Array): Promise<void> {
  if (b.length === 0 || to.destroyed || to.writableEnded) return Promise.resolve();
  if (to.write(b)) return Promise.resolve();
  return new Promise((r) => {
    const done = (): void => {
      to.off("drain", done);
      to.off("close", done);
      r();
    };
    to.on("drain", done);
    to.on("close", done);
  });
}

/** The client→server pump of one connection: applies its faults chunk by chunk, in order. */
class Upstream {
  private seen = 0; // client bytes received so far
  private prev: Uint8Array | undefined; // last chunk that lay wholly before afterBytes
  dropping = false; // past a cut: client bytes (and its FIN) are no longer forwarded
  private replayed = false;
  private held = false;
  private head: Uint8Array[] = []; // client bytes before a hold point, for its callback

  constructor(
    private readonly st: ConnStats,
    private readonly faults: StreamFault[],
    private readonly client: Socket,
    private readonly server: Socket,
  ) {}

  private fire(f: StreamFault): void {
    if (!this.st.fired.includes(f.kind)) this.st.fired.push(f.kind);
  }

  private async hold(f: Extract<StreamFault, { kind: "hold" }>, buf: Uint8Array, end: number): Promise<void> {
    if (this.held) return;
    this.head.push(buf.slice());
    if (end < f.afterBytes) return;
    this.held = true;
    this.fire(f);
    await f.until(Buffer.concat(this.head).subarray(0, f.afterBytes));
  }

  async chunk(buf: Uint8Array): Promise<void> {
    const start = this.seen;
    const end = start + buf.length;
    this.seen = end;
    if (this.dropping) return;
    let out = buf;
    for (const f of this.faults) {
      const at = f.afterBytes;
      if (f.kind === "hold") {
        await this.hold(f, buf, end);
        continue;
      }
      if (f.kind === "delayDown") continue; // the other direction (startProxy)
      if (end <= at && f.kind !== "replay") continue;
      const cut = Math.max(0, at - start); // offset of the fault point inside this chunk
      switch (f.kind) {
        case "delay":
          this.fire(f);
          await pause(f.ms);
          break;
        case "throttle":
          this.fire(f);
          await pause((buf.length / f.bytesPerSec) * 1000);
          break;
        case "rst":
          this.fire(f);
          this.st.up += cut;
          await send(this.server, out.subarray(0, cut));
          this.client.resetAndDestroy();
          this.server.resetAndDestroy();
          this.dropping = true;
          return;
        case "halfclose":
        case "truncate":
          this.fire(f);
          this.st.up += cut;
          await send(this.server, out.subarray(0, cut));
          if (f.kind === "halfclose") this.server.end();
          this.dropping = true;
          return;
        case "bitflip":
          if (start <= at && at < end) {
            this.fire(f);
            out = out.slice();
            out[at - start] = (out[at - start] ?? 0) ^ (1 << ((f.bit ?? 0) & 7));
          }
          break;
        case "replay":
          if (start >= at && !this.replayed && this.prev) {
            this.fire(f);
            this.replayed = true;
            await send(this.server, this.prev);
          }
          if (end <= at) this.prev = buf.slice();
          break;
      }
    }
    this.st.up += out.length;
    await send(this.server, out);
  }
}

export async function startProxy(o: { target: { host: string; port: number }; faults: StreamFault[] }): Promise<Proxy> {
  const stats: ProxyStats = { accepted: 0, conns: [] };
  const open = new Set<Socket>();
  const track = (s: Socket): Socket => {
    open.add(s);
    s.on("close", () => open.delete(s));
    s.on("error", () => s.destroy());
    return s;
  };
  const server: Server = createServer({ pauseOnConnect: true }, (raw) => {
    const client = track(raw);
    const index = stats.accepted++;
    const st: ConnStats = { index, up: 0, down: 0, fired: [] };
    stats.conns.push(st);
    const upstream = track(createConnection({ host: o.target.host, port: o.target.port }));
    const up = new Upstream(
      st,
      o.faults.filter((f) => f.stream === index),
      client,
      upstream,
    );
    let queue: Promise<void> = Promise.resolve();
    upstream.once("connect", () => client.resume());
    client.on("data", (b: Buffer) => {
      client.pause();
      queue = queue
        .then(() => up.chunk(b))
        .then(() => {
          if (!client.destroyed) client.resume();
        });
    });
    client.on(
      "end",
      () =>
        void queue.then(() => {
          if (!upstream.destroyed && !up.dropping) upstream.end();
        }),
    );
    const slowDown = o.faults.find((f): f is Extract<StreamFault, { kind: "delayDown" }> => f.stream === index && f.kind === "delayDown");
    let downQueue: Promise<void> = Promise.resolve();
    upstream.on("data", (b: Buffer) => {
      st.down += b.length;
      if (slowDown !== undefined) {
        // each chunk held back, in order, while the socket is paused
        if (!st.fired.includes("delayDown")) st.fired.push("delayDown");
        upstream.pause();
        downQueue = downQueue
          .then(() => pause(slowDown.ms))
          .then(() => send(client, b))
          .then(() => {
            if (!upstream.destroyed) upstream.resume();
          });
        return;
      }
      if (!client.destroyed && !client.write(b)) {
        upstream.pause();
        client.once("drain", () => upstream.resume());
      }
    });
    upstream.on(
      "end",
      () =>
        void downQueue.then(() => {
          if (!client.destroyed) client.end();
        }),
    );
    client.on(
      "close",
      () =>
        void queue.then(() => {
          if (!up.dropping) upstream.destroy();
        }),
    );
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    port,
    stats,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}
