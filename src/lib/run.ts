// One transfer as the initiator, whoever asked: the CLI (src/cli/main.ts, which prints) and the
// library's copy/send/receive (which never print: their terminal lines are routed into the
// result). Both build a RunConfig through configFrom and a RunOutput, then come here.
import type { RunConfig } from "../config/load.ts";
import { withTermRoute, type TermRoute } from "../cli/progress.ts";
import { EscpError } from "../errors/escp-error.ts";
import { runInitiator } from "../transfer/initiator.ts";
import type { RunOutput } from "../transfer/run-output.ts";

/** Run the transfer cfg describes; returns the exit status the CLI would have (0: every file
 * arrived and verified; per-file failures are in out.reporter.tally). Throws EscpError for a
 * session failure, E_INTERRUPTED when cfg.io.signal was aborted. `route`: the run's terminal
 * lines go there instead of the terminal (and no bar or summary is drawn). */
export async function runTransfer(cfg: RunConfig, out: RunOutput, route?: TermRoute): Promise<number> {
  const signal = cfg.io?.signal;
  if (signal?.aborted) throw new EscpError("E_INTERRUPTED", "interrupted (aborted before it started)");
  const go = (): Promise<number> => runInitiator(cfg, out);
  return route === undefined ? go() : withTermRoute(route, go);
}
