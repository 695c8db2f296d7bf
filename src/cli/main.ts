#!/usr/bin/env bun
// escp entry point: argv → config → run (the initiator, or a server with --server) → exit status.
import { loadConfig } from "../config/load.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { configureLogger, log } from "../log/logger.ts";
import { term } from "./progress.ts";
import { helpText, licenseText, versionText } from "./usage.ts";
import { runInitiator } from "../transfer/initiator.ts";
import { runServer } from "../transfer/server.ts";
import { closeAllSessions } from "../native/session.ts";

async function main(argv: string[]): Promise<number> {
  const cfg = loadConfig(argv, process.env);
  const o = cfg.opts;
  if (o.help) return term.info(helpText()), 0;
  if (o.version) return term.info(versionText()), 0;
  if (o.license) return term.info(licenseText()), 0;
  configureLogger({ verbose: o.verbose, quiet: o.quiet, role: o.server ? "server" : "client", ...(o.logfile ? { logfile: o.logfile } : {}) });
  if (o.server) return runServer(o);
  return runInitiator(cfg);
}

function die(e: unknown): never {
  const err = toEscpError(e);
  term.error(`escp: ${err.message}`);
  if (err.code === "E_INTERNAL" && err.cause instanceof Error) log.debug(err.cause.stack ?? String(err.cause));
  process.exit(err.exitCode);
}

/** A signal stops the sessions first (a receiver's unfinished partials are sealed, resumable). */
function signalled(what: string): void {
  closeAllSessions();
  die(new EscpError("E_INTERRUPTED", what));
}

process.on("SIGINT", () => signalled("interrupted"));
process.on("SIGTERM", () => signalled("terminated"));
process.on("SIGHUP", () => signalled("hung up"));
main(process.argv.slice(2)).then((code) => process.exit(code), die);
