// The --mgmt transport: a Unix-domain socket (mode 0600, one connection) replacing ssh for
// debugging and tests. EScp differs: its socket followed the umask, so anyone could inject a key.
import * as fs from "node:fs";
import { EscpError } from "../errors/escp-error.ts";
import { streamChannel, type ControlChannel } from "./channel.ts";

type Sock = Bun.Socket<SocketState>;

/** Per-socket state: inbound bytes as a ReadableStream, outbound writes queued on backpressure. */
class SocketState {
  controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly readable = new ReadableStream<Uint8Array>({
    start: (c) => {
      this.controller = c;
    },
  });
  private queue: { data: Uint8Array; done: () => void; fail: (e: Error) => void }[] = [];
  private closedFlag = false;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => {
    this.resolveClosed = r;
  });

  constructor(private readonly sock: () => Sock) {}

  write(data: Uint8Array): Promise<void> {
    if (this.closedFlag) return Promise.reject(new Error("mgmt socket is closed"));
    return new Promise((done, fail) => {
      this.queue.push({ data, done, fail });
      if (this.queue.length === 1) this.drain();
    });
  }

  enqueue(chunk: Uint8Array): void {
    if (!this.closedFlag) this.controller.enqueue(chunk);
  }

  drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.sock().write(head.data);
      if (n < head.data.length) {
        head.data = head.data.subarray(Math.max(0, n));
        return; // Bun calls drain() when the socket is writable again
      }
      this.queue.shift();
      head.done();
    }
  }

  onClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const q of this.queue) q.fail(new Error("mgmt socket closed"));
    this.queue = [];
    try {
      this.controller.close();
    } catch {
      // already closed
    }
    this.resolveClosed();
  }
}

const handlers: Bun.SocketHandler<SocketState> = {
  data(s, chunk) {
    s.data.enqueue(new Uint8Array(chunk));
  },
  drain(s) {
    s.data.drain();
  },
  close(s) {
    s.data?.onClose();
  },
  error(s) {
    s.data?.onClose();
  },
  end(s) {
    s.data?.onClose();
  },
};

function channelFor(sock: Sock, onShutdown: () => void = () => undefined): ControlChannel {
  const state = sock.data;
  return streamChannel({
    readable: state.readable,
    write: (line) => state.write(new TextEncoder().encode(line)),
    exited: state.closed.then(() => null),
    async shutdown() {
      sock.end();
      state.onClose();
      onShutdown();
    },
  });
}

function ioError(what: string, path: string, e: unknown): EscpError {
  return new EscpError("E_HANDSHAKE", `${what} mgmt socket ${path}: ${e instanceof Error ? e.message : String(e)}`, { path, cause: e });
}

/** Remove a stale socket at `path`; refuse to touch anything that is not a socket. */
function clearStale(path: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new EscpError("E_USAGE", `--mgmt ${path} exists and is not a socket; refusing to replace it`, { path });
  fs.unlinkSync(path);
}

/** Receiver side: listen on `path` (mode 0600) and resolve with the first connection; later ones are refused. */
export async function serveMgmt(path: string): Promise<ControlChannel> {
  clearStale(path);
  return new Promise((resolve, reject) => {
    let accepted = false;
    let listener: Bun.UnixSocketListener<SocketState>;
    const oldMask = process.umask(0o177); // the socket is born 0600: no window before chmod
    try {
      listener = Bun.listen<SocketState>({
        unix: path,
        socket: {
          ...handlers,
          open(s) {
            s.data = new SocketState(() => s);
            if (accepted) return void s.end();
            accepted = true;
            listener.stop();
            fs.rmSync(path, { force: true }); // one connection only; nobody else can dial in
            resolve(channelFor(s));
          },
        },
      });
    } catch (e) {
      return reject(ioError("cannot listen on", path, e));
    } finally {
      process.umask(oldMask);
    }
    try {
      fs.chmodSync(path, 0o600);
    } catch (e) {
      listener.stop(true);
      reject(ioError("cannot chmod", path, e));
    }
  });
}

/** Sender side: connect to a receiver's mgmt socket. */
export async function openMgmtChannel(path: string): Promise<ControlChannel> {
  let sock: Sock;
  try {
    sock = await Bun.connect<SocketState>({
      unix: path,
      socket: {
        ...handlers,
        open(s) {
          s.data = new SocketState(() => s);
        },
      },
    });
  } catch (e) {
    throw ioError("cannot connect to", path, e);
  }
  return channelFor(sock);
}
