// Tests for --help (generated from the option table), --version and --license text.
import { describe, expect, test } from "bun:test";
import { OPTION_TABLE } from "../config/options.ts";
import { helpText, licenseText, USAGE_LINE, versionText } from "./usage.ts";
import { PROTOCOL_MAJOR, PROTOCOL_MINOR } from "../control/messages.ts";

describe("usage", () => {
  test("help lists every visible flag and omits hidden ones", () => {
    const help = helpText();
    expect(help.startsWith(USAGE_LINE)).toBe(true);
    for (const o of OPTION_TABLE) {
      if (o.hidden === true || (o.long === undefined && o.short === undefined)) continue;
      expect(help).toContain(o.long !== undefined ? `--${o.long}` : `-${o.short}`);
    }
    expect(help).not.toContain("--server");
    expect(help).not.toContain("--mgmt");
    expect(help).toContain("(default 1M)");
    expect(help).toContain("--timeout SECONDS");
    expect(help).toContain("(default 30)");
  });
  test("version names the package version and protocol", () => {
    expect(versionText("9.9.9")).toBe(`escp 9.9.9 (protocol ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR})`);
    expect(versionText()).toMatch(/^escp \d+\.\d+\.\d+ \(protocol \d+\.\d+\)$/);
  });
  test("license is BSD-3-Clause", () => {
    expect(licenseText()).toContain("Copyright (c) 2026, the escp authors");
    expect(licenseText()).toContain("BSD 3-Clause License");
  });
});
