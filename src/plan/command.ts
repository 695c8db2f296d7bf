// `escp plan …`: the subcommand's dispatch (create a plan, `status`, `merge`). `plan` is a
// subcommand only as the first argument; a file named plan is copied as ./plan.
import { tokenizeArgv } from "../cli/args.ts";
import { term } from "../cli/progress.ts";
import { defaultText, flagColumn } from "../cli/usage.ts";
import { OPTION_TABLE } from "../config/options.ts";
import { EscpError } from "../errors/escp-error.ts";
import { configureLogger } from "../log/logger.ts";
import { createPlan } from "./create.ts";
import { runMerge } from "./merge.ts";
import { runStatus } from "./status.ts";

const USAGE = "usage: escp plan [OPTIONS] --shards N SOURCE... DEST  or  escp plan status [--json] PLAN_DIR  or  escp plan merge [--manifest FILE] PLAN_DIR";

/** `escp plan status|merge PLAN_DIR [options]`: the plan directory and the options given. */
function planDirArgs(sub: string, argv: string[], allowed: readonly string[]): { dir: string; json: boolean; manifest?: string } {
  const cli = tokenizeArgv(argv);
  const extra = Object.entries(cli.flags).find(([field]) => !allowed.includes(field));
  if (extra) throw new EscpError("E_USAGE", `escp plan ${sub}: ${extra[1]} does not apply; ${USAGE}`);
  const [dir, more] = cli.positionals;
  if (dir === undefined || more !== undefined) throw new EscpError("E_USAGE", `escp plan ${sub}: give one plan directory; ${USAGE}`);
  configureLogger({ verbose: cli.values.verbose === true, quiet: cli.values.quiet === true, role: "client" });
  return { dir, json: cli.values.json === true, ...(cli.values.manifest !== undefined ? { manifest: cli.values.manifest } : {}) };
}

/** `escp plan --help`: the forms and the plan's own options (the table's `plan` rows). */
export function planHelpText(): string {
  const rows = OPTION_TABLE.filter((s) => s.plan === true).map((s) => `  ${flagColumn(s).padEnd(26)} ${s.help.replace(/^escp plan: /, "")}${defaultText(s)}`);
  return [
    USAGE,
    "",
    "Walks SOURCE... once and writes a plan directory: N balanced shard lists, plan.json, slurm.sbatch",
    "and parallel.sh. Other escp options are passed to every shard. docs/scale-out.md has the details.",
    "",
    "Plan options:",
    ...rows,
  ].join("\n");
}

/** Runs `escp plan ARGV…` (argv after "plan"); returns the exit status. */
export function runPlanCommand(argv: string[], env: Record<string, string | undefined>): number {
  const [sub, ...rest] = argv;
  if (sub === "status") {
    const a = planDirArgs("status", rest, ["json", "verbose", "quiet"]);
    return runStatus(a.dir, a.json);
  }
  if (sub === "merge") {
    const a = planDirArgs("merge", rest, ["manifest", "verbose", "quiet"]);
    return runMerge(a.dir, a.manifest);
  }
  const cli = tokenizeArgv(argv);
  if (cli.values.help === true) return (term.info(planHelpText()), 0);
  configureLogger({ verbose: cli.values.verbose === true, quiet: cli.values.quiet === true, role: "client" });
  return createPlan(argv, env);
}
