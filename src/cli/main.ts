#!/usr/bin/env bun
// escp entry point: argv → config → run (the library's runTransfer, or a server with --server) → exit status.
import { loadConfig } from "../config/load.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { configureLogger, log } from "../log/logger.ts";
import { term } from "./progress.ts";
import { helpText, licenseText, versionText } from "./usage.ts";
import { checkoutText } from "./checkout.ts";
import { runTransfer } from "../lib/run.ts";
import { runServer } from "../transfer/server.ts";
import { closeAllSessions } from "../native/session.ts";
import { encodeControl } from "../control/messages.ts";
import { jsonUsageFailure, RunOutput } from "../transfer/run-output.ts";
import { runPlanCommand } from "../plan/command.ts";

const argv = process.argv.slice(2);
/** The initiator's outputs (--json, --manifest, the summary), once the options are known. */
let run: RunOutput | undefined;

async function main(): Promise<number> {
  if (argv[0] === "plan") return runPlanCommand(argv.slice(1), process.env); // a file named plan: ./plan
  const cfg = loadConfig(argv, process.env);
  const o = cfg.opts;
  if (o.help) return (term.info(helpText()), 0);
  if (o.version) {
    const checkout = checkoutText(); // a development checkout also says which one runs
    return (term.info(checkout === undefined ? versionText() : `${versionText()}\n${checkout}`), 0);
  }
  if (o.license) return (term.info(licenseText()), 0);
  if (!o.server) run = new RunOutput(o);
  configureLogger({ verbose: o.verbose, quiet: o.quiet, role: o.server ? "server" : "client", ...(o.logfile ? { logfile: o.logfile } : {}) });
  if (o.server || !run) return runServer(o);
  if (cfg.shardDone && cfg.shardDone.skipped > 0) {
    const { skipped, of } = cfg.shardDone;
    run.reporter.notice(`--shard-done: ${skipped} of ${of} entries verified by an earlier attempt, not sent again`);
    if (cfg.filelistEntries.length === 0) return 0; // the whole shard was done
  }
  return runTransfer(cfg, run); // the library's runner: the CLI is one of its users
}

function die(e: unknown): never {
  const err = toEscpError(e);
  term.error(`escp: ${err.message}`);
  if (err.code === "E_INTERNAL" && err.cause instanceof Error) log.debug(err.cause.stack ?? String(err.cause));
  let code = err.exitCode;
  if (run)
    code = run.end(code, err); // --json: the error and the summary; --manifest: committed
  else jsonUsageFailure(argv, err);
  process.exit(code);
}

/** A signal stops the sessions first (a receiver's unfinished partials are sealed, resumable). */
function signalled(what: string): void {
  closeAllSessions(encodeControl({ type: "error", code: "E_INTERRUPTED", message: `${what} by a signal`, fatal: true, fino: 0, path: "" }));
  die(new EscpError("E_INTERRUPTED", what));
}

process.on("SIGINT", () => signalled("interrupted"));
process.on("SIGTERM", () => signalled("terminated"));
process.on("SIGHUP", () => signalled("hung up"));
main().then((code) => process.exit(run ? run.end(code) : code), die);
