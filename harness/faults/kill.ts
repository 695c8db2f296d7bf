// Fault: kill one side at a named protocol state (ESCP_FAULT_KILL_AT, see
// src/transfer/fault-points.ts), with a --mgmt receiver the test owns (harness/faults/pair.ts).
import { runPair, type PairRun, type Side } from "./pair.ts";

export const STATES = ["init", "filelist", "midblock", "verify", "close"] as const;
export type State = (typeof STATES)[number];

/** Start a receiver on `sock` (cwd `cwd`), run the sender with `args`, kill `side` at `state`. */
export function runWithKill(side: Side, state: State, sock: string, cwd: string, args: string[]): Promise<PairRun> {
  const env = { ESCP_FAULT_KILL_AT: `${side}:${state}` };
  return runPair({ sock, cwd, args, ...(side === "sender" ? { senderEnv: env } : { receiverEnv: env }) });
}
