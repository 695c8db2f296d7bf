// `escp plan` dispatch: help from the option table's plan rows, and the argument checks of
// `status` and `merge`.
import { describe, expect, test } from "bun:test";
import { OPTION_TABLE } from "../config/options.ts";
import { EscpError } from "../errors/escp-error.ts";
import { planHelpText, runPlanCommand } from "./command.ts";

function usage(argv: string[]): string {
  try {
    runPlanCommand(argv, { ESCP_CONFIG: "/dev/null" });
  } catch (e) {
    if (e instanceof EscpError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "no error";
}

describe("escp plan dispatch", () => {
  test("help lists every plan option", () => {
    const help = planHelpText();
    for (const s of OPTION_TABLE.filter((o) => o.plan === true)) expect(help).toContain(`--${s.long}`);
  });
  test("status and merge take one plan directory and only their options", () => {
    expect(usage(["status"])).toStartWith("E_USAGE: escp plan status: give one plan directory");
    expect(usage(["merge", "a", "b"])).toStartWith("E_USAGE: escp plan merge: give one plan directory");
    expect(usage(["merge", "a", "--json"])).toStartWith("E_USAGE: escp plan merge: --json does not apply");
    expect(usage(["status", "a", "--shards", "3"])).toStartWith("E_USAGE: escp plan status: --shards does not apply");
    expect(usage(["status", "/nonexistent"])).toStartWith("E_USAGE: /nonexistent/plan.json: cannot read the plan");
  });
});
