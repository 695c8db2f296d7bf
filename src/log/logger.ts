// The one logger: levels debug/info/warn/error; JSON lines to `<logfile>.client|.server` (0600,
// append, opened by open-logfile.ts); terminal output only through progress.term. No secrets.
// EScp differs: log files are 0600 (not 0644) and hold JSON lines; no syslog.
import { closeSync, writeSync } from "node:fs";
import { term } from "../cli/progress.ts";
import { openLogFile } from "./open-logfile.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface LoggerConfig {
  verbose: boolean;
  quiet: boolean;
  logfile?: string;
  role: "client" | "server";
  sessionId?: string;
}

interface LoggerState {
  verbose: boolean;
  quiet: boolean;
  role: "client" | "server";
  sessionId: string | undefined;
  fd: number | undefined;
  logPath: string | undefined;
}

const state: LoggerState = { verbose: false, quiet: false, role: "client", sessionId: undefined, fd: undefined, logPath: undefined };

/** Field names that may hold key material: dropped from every log line. */
const SECRET_NAME = /key|secret|token|passw/i;

/** Set up logging for this process; replaces any previous configuration. Throws EscpError
 *  (E_USAGE) when the log file may not be used (open-logfile.ts). */
export function configureLogger(cfg: LoggerConfig): void {
  closeLogger();
  state.verbose = cfg.verbose;
  state.quiet = cfg.quiet;
  state.role = cfg.role;
  state.sessionId = cfg.sessionId;
  if (cfg.logfile === undefined) return;
  const path = `${cfg.logfile}.${cfg.role}`;
  state.fd = openLogFile(path); // throws E_USAGE: the sender exits 2, the receiver says so in its reply
  state.logPath = path;
}

/** The session id is known only after the handshake; later lines carry it. */
export function setLogSession(sessionId: string): void {
  state.sessionId = sessionId;
}

/** Flush-free close (writes are synchronous); safe to call twice. */
export function closeLogger(): void {
  if (state.fd !== undefined) {
    try {
      closeSync(state.fd);
    } catch {
      // already closed: nothing to do
    }
  }
  state.fd = undefined;
  state.logPath = undefined;
}

/** Copy of `fields` without secret-named entries; bigints become strings for JSON. */
export function redactFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_NAME.test(k)) continue;
    out[k] = typeof v === "bigint" ? v.toString() : v instanceof Error ? v.message : v;
  }
  return out;
}

function writeFile(level: LogLevel, msg: string, fields: LogFields | undefined): void {
  if (state.fd === undefined) return;
  if (level === "debug" && !state.verbose) return;
  const rec = { ts: new Date().toISOString(), level, role: state.role, session: state.sessionId, msg, fields: fields ? redactFields(fields) : undefined };
  try {
    writeSync(state.fd, `${JSON.stringify(rec)}\n`);
  } catch (e) {
    const path = state.logPath;
    closeLogger();
    term.warn(`warning: --logfile ${path ?? ""}: write failed, logging to the file stops: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function fieldText(fields: LogFields | undefined): string {
  if (!fields) return "";
  const parts = Object.entries(redactFields(fields)).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return parts.length > 0 ? ` (${parts.join(" ")})` : "";
}

function writeTerm(level: LogLevel, msg: string, fields: LogFields | undefined): void {
  const who = state.role === "server" ? "escp server" : "escp";
  switch (level) {
    case "error":
      term.error(`${who}: error: ${msg}`);
      return;
    case "warn":
      term.warn(`${who}: warning: ${msg}`);
      return;
    case "info":
      // The receiver's stdout is the control channel: info never reaches its terminal.
      if (state.role === "client" && !state.quiet) term.info(msg);
      return;
    case "debug":
      // The receiver's stderr reaches the sender, which echoes it with -v.
      if (state.verbose) term.debug(`${state.role === "server" ? "escp server: " : ""}debug: ${msg}${fieldText(fields)}`);
      return;
  }
}

function emit(level: LogLevel, msg: string, fields?: LogFields): void {
  writeFile(level, msg, fields);
  writeTerm(level, msg, fields);
}

export const logger = {
  debug: (msg: string, fields?: LogFields): void => emit("debug", msg, fields),
  info: (msg: string, fields?: LogFields): void => emit("info", msg, fields),
  warn: (msg: string, fields?: LogFields): void => emit("warn", msg, fields),
  error: (msg: string, fields?: LogFields): void => emit("error", msg, fields),
  /** A session fact for the log file only (info level): the terminal has the bar and summary. */
  record: (msg: string, fields?: LogFields): void => writeFile("info", msg, fields),
  /** Whether debug lines go anywhere (skip building expensive debug text otherwise). */
  get debugEnabled(): boolean {
    return state.verbose;
  },
};

/** Short alias used across the code base: `log.warn(...)`. */
export const log = logger;
