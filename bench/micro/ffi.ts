// FFI call cost and draining the C event ring: what one JS↔C crossing costs, and what the
// JS thread pays per event it takes out of a session's ring (raw copy, and decoded into
// NativeEvent objects by NativeSession). Events come from the test hook
// escp_test_events_fill (synthetic FILE_DONE records pushed into an idle session's ring).
import { do_not_optimize } from "mitata";
import { loadNative } from "../../src/native/lib.ts";
import { NativeSession, type SessionParams } from "../../src/native/session.ts";
import { ESCP_ABI_VERSION, ESCP_ROLE_RECEIVER, ESCP_S_COUNT, EVENT_SIZE } from "../../src/native/symbols.ts";
import { check, type Ctx, emptyTopic, type Topic } from "./common.ts";

const BATCH = 256; // NativeSession polls 256 events per call

const PARAMS: SessionParams = {
  threads: 1,
  blockSize: 1 << 20,
  ioEngine: "dummy",
  direct: false,
  checksum: true,
  sparse: false,
  timeoutMs: 30_000,
  rateLimit: 0,
  ipMode: 0,
  verbose: false,
  profile: false,
  compressLevel: 0,
  preserve: false,
};

export async function setup(_ctx: Ctx): Promise<Topic> {
  const t = emptyTopic();
  const lib = loadNative();
  const session = new NativeSession("receiver", PARAMS);
  // The raw handle for the hook and the raw poll: a second session of the same library.
  const h = lib.escp_session_new(ESCP_ROLE_RECEIVER);
  if (!h) throw new Error("escp_session_new failed");
  t.cleanup = () => {
    session.close();
    lib.escp_session_free(h);
  };
  const stats = new BigUint64Array(ESCP_S_COUNT);
  const evbuf = new Uint8Array(BATCH * EVENT_SIZE);
  // The session's own handle is private; reach it for the fill hook only.
  const sh = (session as unknown as { handle: NonNullable<typeof h> }).handle;

  // Checks: the hook fills exactly what fits, poll returns what was filled, decoding works.
  const filled = lib.escp_test_events_fill(h, 5000);
  let drained = 0;
  for (let n = lib.escp_event_poll(h, evbuf, BATCH); n > 0; n = lib.escp_event_poll(h, evbuf, BATCH)) drained += n;
  check(
    t,
    "ffi: events_fill stops at the ring capacity and poll drains all",
    filled === 4096 && drained === filled,
    `filled ${filled} (ring 4096), drained ${drained}`,
  );
  lib.escp_test_events_fill(sh, 3);
  const evs = session.pollEvents();
  const ok = evs.length === 3 && evs.every((e, i) => e.kind === "fileDone" && e.fino === i + 1);
  check(
    t,
    "ffi: NativeSession decodes synthetic events",
    ok,
    `${evs.length} events, first ${JSON.stringify(evs[0] ?? null, (_k, v) => (v instanceof Uint8Array ? v.length : v))}`,
  );
  check(t, "ffi: escp_abi_version", lib.escp_abi_version() === ESCP_ABI_VERSION, `abi ${lib.escp_abi_version()}`);

  t.cases.push(
    { name: "ffi: escp_abi_version() (no args)", bytesPerOp: 0, fn: () => do_not_optimize(lib.escp_abi_version()) },
    { name: "ffi: escp_stats_read(h, u64[16])", bytesPerOp: 0, fn: () => do_not_optimize(lib.escp_stats_read(h, stats, ESCP_S_COUNT)) },
    { name: "ffi: NativeSession.stats() (call + object)", bytesPerOp: 0, fn: () => do_not_optimize(session.stats()) },
    {
      name: "ring: drain() of empty rings (one idle tick)",
      bytesPerOp: 0,
      fn: () =>
        do_not_optimize(
          session.drain(
            () => {},
            () => {},
          ),
        ),
    },
    {
      name: `ring: fill ${BATCH} + escp_event_poll raw`,
      bytesPerOp: BATCH * EVENT_SIZE,
      items: BATCH,
      unit: "GB/s",
      fn: () => {
        lib.escp_test_events_fill(h, BATCH);
        do_not_optimize(lib.escp_event_poll(h, evbuf, BATCH));
      },
    },
    {
      name: `ring: fill ${BATCH} + NativeSession.drain (decode)`,
      bytesPerOp: BATCH * EVENT_SIZE,
      items: BATCH,
      unit: "GB/s",
      fn: () => {
        lib.escp_test_events_fill(sh, BATCH);
        let n = 0;
        session.drain(
          () => {},
          (ev) => {
            n += ev.fino;
          },
        );
        do_not_optimize(n);
      },
    },
  );
  return t;
}
