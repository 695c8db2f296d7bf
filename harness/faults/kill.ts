// Fault: kill one side at a named protocol state (ESCP_FAULT_KILL_AT, see
// src/transfer/fault-points.ts), with a --mgmt server the test owns (harness/faults/pair.ts).
// Sides are DATA roles: in a push the initiator is the sender, in a pull the server is.
import { runPair, type PairRun, type Side } from "./pair.ts";

export const STATES = ["init", "filelist", "midblock", "verify", "close"] as const;
export type State = (typeof STATES)[number];
export type Direction = "push" | "pull";

/** Start a receiver on `sock` (cwd `cwd`), run the sender with `args`, kill `side` at `state`. */
export function runWithKill(side: Side, state: State, sock: string, cwd: string, args: string[]): Promise<PairRun> {
  const env = { ESCP_FAULT_KILL_AT: `${side}:${state}` };
  return runPair({ sock, cwd, args, ...(side === "sender" ? { senderEnv: env } : { receiverEnv: env }) });
}

/** What each data role's process did (exit status, stderr), whichever process played it. */
export interface RoleRun {
  sender: { code: number; stderr: string };
  receiver: { code: number; stderr: string };
  /** The process the user ran (push: the sender; pull: the receiver). */
  initiator: "sender" | "receiver";
}

/** The process (pair.ts's naming: "sender" = the initiator, "receiver" = the --mgmt server)
 *  that plays data role `side` in `direction`. */
export function processOf(side: Side, direction: Direction): Side {
  return direction === "push" ? side : side === "sender" ? "receiver" : "sender";
}

/** The pair's exit statuses and stderr by data role. */
export function byRole(r: PairRun, direction: Direction): RoleRun {
  const initiator = { code: r.senderCode, stderr: r.senderStderr };
  const server = { code: r.receiverCode, stderr: r.receiverStderr };
  return direction === "push" ? { sender: initiator, receiver: server, initiator: "sender" } : { sender: server, receiver: initiator, initiator: "receiver" };
}

/** runWithKill for either direction: `args` are the initiator's (a pull's name the server's
 *  paths as `host:path` sources); `side` is a data role. */
export async function runWithKillIn(direction: Direction, side: Side, state: State, sock: string, cwd: string, args: string[]): Promise<RoleRun> {
  const env = { ESCP_FAULT_KILL_AT: `${side}:${state}` }; // the data role names the state...
  const placed = processOf(side, direction) === "sender" ? { senderEnv: env } : { receiverEnv: env }; // ...in the process playing it
  return byRole(await runPair({ sock, cwd, args, ...placed }), direction);
}
