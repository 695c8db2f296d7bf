// Generated files: every one committed is fresh (harness/gen-files.ts --check), the bash and zsh
// completions parse and actually complete (bash run for real, ssh replaced by a local stand-in),
// and escp(1) renders without groff warnings.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OPTION_TABLE } from "../config/options.ts";
import { ERROR_CODES } from "../errors/codes.ts";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { bashCompletion, zshCompletion } from "./completion.ts";
import { manPage } from "./manpage.ts";
import { textFile } from "../../harness/gen-files.ts";

const REPO = join(import.meta.dir, "..", "..");
const BASH_FILE = join(REPO, "docs", "completion", "escp.bash");
const ZSH_FILE = join(REPO, "docs", "completion", "_escp");
const MAN_FILE = join(REPO, "docs", "escp.1");
const VISIBLE = OPTION_TABLE.filter((s) => s.hidden !== true && (s.long !== undefined || s.short !== undefined));

function has(cmd: string): boolean {
  return Bun.spawnSync(["sh", "-c", `command -v ${cmd}`]).exitCode === 0;
}

const tmp = makeTmpDir("gen-files-test");
afterAll(() => removeTmpDir(tmp));

describe("gen-files --check", () => {
  test("every generated file in the tree is fresh", () => {
    const p = Bun.spawnSync([process.execPath, join(REPO, "harness", "gen-files.ts"), "--check"], { cwd: REPO, stderr: "pipe", stdout: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
  }, 120_000);

  test("a text generator reports a missing or changed output as stale, and is fresh once written", () => {
    const root = join(tmp, "gen-root");
    let text = "one\n";
    const g = textFile("docs/sub/out.txt", () => text, root);
    expect(g.stale()).toEqual(["docs/sub/out.txt"]);
    g.write();
    expect(readFileSync(join(root, "docs", "sub", "out.txt"), "utf8")).toBe("one\n");
    expect(g.stale()).toEqual([]);
    text = "two\n";
    expect(g.stale()).toEqual(["docs/sub/out.txt"]);
  });

  test("the committed completion and man page are byte-identical to the generators' output", () => {
    expect(readFileSync(BASH_FILE, "utf8")).toBe(bashCompletion());
    expect(readFileSync(ZSH_FILE, "utf8")).toBe(zshCompletion());
    expect(readFileSync(MAN_FILE, "utf8")).toBe(manPage());
  });
});

// A fake `ssh` that runs the remote command with sh locally, so remote completion is exercised
// end to end (including the quoting of the path for the remote shell).
const fakeBin = join(tmp, "bin");
const home = join(tmp, "home");
const remote = join(tmp, "remote");
mkdirSync(fakeBin, { recursive: true });
mkdirSync(join(home, ".ssh"), { recursive: true });
mkdirSync(join(remote, "my dir"), { recursive: true });
mkdirSync(join(remote, "it's"), { recursive: true });
writeFileSync(join(remote, "myfile"), "x");
writeFileSync(join(fakeBin, "ssh"), '#!/bin/sh\nfor a; do last=$a; done\nprintf \'%s\\n\' "$*" >> "$FAKE_SSH_LOG"\nexec sh -c "$last"\n');
chmodSync(join(fakeBin, "ssh"), 0o755);
writeFileSync(join(home, ".ssh", "config"), "Host alpha beta *.wild\n  HostName 10.0.0.1\nhost gamma\n");
writeFileSync(join(home, ".ssh", "known_hosts"), "[delta]:2222,10.1.1.1 ssh-ed25519 AAAA\n|1|hashed= ssh-rsa AAAA\n");

/** Sources the committed bash completion, completes `words` (last one is current), returns COMPREPLY. */
function completeBash(words: string[]): string[] {
  const log = join(tmp, "ssh.log");
  const script = `source ${JSON.stringify(BASH_FILE)}
COMP_WORDBREAKS=$' \\t\\n"\\'><=;|&(:'
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
_escp
printf '%s\\0' "\${COMPREPLY[@]}"`;
  const p = Bun.spawnSync(["bash", "-c", script, "bash", ...words], {
    cwd: tmp,
    env: { PATH: `${fakeBin}:${process.env.PATH ?? ""}`, HOME: home, FAKE_SSH_LOG: log },
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(p.stderr.toString()).toBe("");
  expect(p.exitCode).toBe(0);
  return p.stdout
    .toString()
    .split("\0")
    .filter((s) => s !== "");
}

describe("bash completion", () => {
  test("parses (bash -n)", () => {
    const p = Bun.spawnSync(["bash", "-n", BASH_FILE], { stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
  });

  test("completes flags from the table, hidden ones left out", () => {
    expect(completeBash(["escp", "--par"])).toEqual(["--parallel "]);
    expect(completeBash(["escp", "--no-r"])).toEqual(["--no-resume "]);
    const all = completeBash(["escp", "-"]).map((s) => s.trim());
    for (const spec of VISIBLE) {
      if (spec.long !== undefined) expect(all).toContain(`--${spec.long}`);
      if (spec.short !== undefined) expect(all).toContain(`-${spec.short}`);
    }
    expect(all).not.toContain("--server");
    expect(all).not.toContain("--mgmt");
  });

  test("completes enum values, TX::RX forms included", () => {
    const engines = completeBash(["escp", "--ioengine", ""]);
    expect(engines).toContain("posix ");
    expect(engines).toContain("dummy ");
    expect(engines).toContain("posix::dummy ");
    // bash splits posix::d at the colons; the reply is the part after the last one
    expect(completeBash(["escp", "--ioengine", "posix", "::", "d"])).toEqual(["dummy "]);
    expect(completeBash(["escp", "--ioengine", "=", "du"]).sort()).toEqual(["dummy ", "dummy::dummy ", "dummy::posix "]);
  });

  test("the plan subcommand and its status/merge words complete in their places only", () => {
    expect(completeBash(["escp", "pla"])).toEqual(["plan "]);
    expect(completeBash(["escp", "plan", "st"])).toEqual(["status "]);
    expect(completeBash(["escp", "plan", "m"])).toEqual(["merge "]);
    expect(completeBash(["escp", "somefile", "pla"])).toEqual([]);
  });

  test("FILE options complete local paths; value-less numbers complete nothing", () => {
    mkdirSync(join(tmp, "idfiles"), { recursive: true });
    writeFileSync(join(tmp, "idfiles", "id_test"), "k");
    expect(completeBash(["escp", "-i", "idfiles/id_"])).toEqual(["idfiles/id_test "]);
    expect(completeBash(["escp", "--filelist", "idf"])).toEqual(["idfiles/"]);
    expect(completeBash(["escp", "--parallel", ""])).toEqual([]);
  });

  test("hosts from ~/.ssh/config and known_hosts complete with a colon and no space", () => {
    const hosts = completeBash(["escp", "somefile", ""]).filter((s) => s.endsWith(":"));
    expect(hosts.sort()).toEqual(["10.1.1.1:", "alpha:", "beta:", "delta:", "gamma:"]);
    expect(completeBash(["escp", "al"])).toEqual(["alpha:"]);
  });

  test("host:path lists the remote side through ssh; directories take no space", () => {
    const log = join(tmp, "ssh.log");
    writeFileSync(log, "");
    const got = completeBash(["escp", "alpha", ":", `${remote}/m`]);
    expect(got.sort()).toEqual([`${remote}/my\\ dir/`, `${remote}/myfile `]);
    const call = readFileSync(log, "utf8");
    expect(call).toContain("-o BatchMode=yes -o ConnectTimeout=5 alpha ls -d -p -- ");
    // a quote in the path survives the remote shell
    expect(completeBash(["escp", "alpha", ":", `${remote}/it'`])).toEqual([`${remote}/it\\'s/`]);
    // nothing there: no replies, no error
    expect(completeBash(["escp", "alpha", ":", `${remote}/nope`])).toEqual([]);
  });
});

describe("zsh completion", () => {
  test("parses (zsh -n)", () => {
    // harness/setup.sh installs zsh: missing is a failure, not a silent pass.
    expect(has("zsh") ? "" : "zsh is not installed: apt-get install zsh (harness/setup.sh does)").toBe("");
    const p = Bun.spawnSync(["zsh", "-n", ZSH_FILE], { stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    const text = readFileSync(ZSH_FILE, "utf8");
    expect(text.startsWith("#compdef escp\n")).toBe(true);
    for (const spec of VISIBLE) if (spec.long !== undefined) expect(text).toContain(`'--${spec.long}[`);
    expect(text).toContain("(posix dummy posix\\:\\:posix posix\\:\\:dummy dummy\\:\\:posix dummy\\:\\:dummy)");
  });
});

// Drives a real interactive zsh in a pty (zsh/zpty): types LINE and TAB, then waits until the
// screen shows PATTERN (a zsh glob); `timeout` bounds the wait if it never does.
const ZPTY_SCRIPT = `zmodload zsh/zpty
zpty z env PATH="$2:$PATH" HOME="$5" zsh -f -i
zpty -w z "PS1='%% '; fpath=(\${(q)1} \\$fpath); autoload -Uz compinit; compinit -u -D; setopt nobeep"
zpty -n -w z "$3"$'\\t'
if zpty -r z out "$4"; then print -r -- MATCHED; fi
zpty -d z
`;

function zshShows(line: string, pattern: string): boolean {
  const script = join(tmp, "zpty.zsh");
  writeFileSync(script, ZPTY_SCRIPT);
  const p = Bun.spawnSync(["timeout", "30", "zsh", "-f", script, join(REPO, "docs", "completion"), fakeBin, line, pattern, home], {
    cwd: tmp,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, FAKE_SSH_LOG: join(tmp, "ssh.log") },
  });
  return p.stdout.toString().includes("MATCHED");
}

describe("zsh completion in a real zsh", () => {
  const zsh = has("zsh");
  if (!zsh) console.log("skip: zsh is not installed (harness/setup.sh installs it)");
  test.skipIf(!zsh)(
    "flags, TX::RX engine values and host:path through ssh complete",
    () => {
      expect(zshShows("escp --par", "*--parallel*")).toBe(true);
      expect(zshShows("escp --ioengine posix::", "*posix::dummy*")).toBe(true);
      // one remote match: the line becomes alpha:…/sub/space\ dir/
      mkdirSync(join(remote, "sub", "space dir"), { recursive: true });
      expect(zshShows(`escp alpha:${remote}/sub/sp`, "*alpha:*/sub/space\\\\ dir/*")).toBe(true);
    },
    120_000,
  );
});

describe("escp(1)", () => {
  const page = readFileSync(MAN_FILE, "utf8");

  test("has the sections, every visible option and every exit status", () => {
    for (const s of ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]) {
      expect(page).toContain(`\n.SH ${s}\n`);
    }
    for (const spec of VISIBLE) if (spec.long !== undefined) expect(page).toContain(`\\-\\-${spec.long.replace(/-/g, "\\-")}`);
    expect(page).not.toContain("\\-\\-mgmt");
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(page).toContain(code);
      expect(page).toContain(`\n.B ${info.exit}\n`);
    }
    expect(page).toContain("ESCP_CONFIG");
    expect(page).toContain("/etc/escp.conf");
  });

  test("renders with groff without warnings", () => {
    expect(has("groff") ? "" : "groff is not installed: apt-get install groff-base (harness/setup.sh does)").toBe("");
    const p = Bun.spawnSync(["groff", "-man", "-Tutf8", "-ww", MAN_FILE], { stdout: "pipe", stderr: "pipe", env: { ...process.env, LC_ALL: "C.UTF-8" } });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    const text = p.stdout.toString().replace(/.\x08/g, "");
    expect(text).toContain("EXIT STATUS");
    expect(text).toContain("--parallel N");
    expect(text).toMatch(/number\s+of\s+parallel\s+data\s+streams\s+\(default\s+4\)/);
  });
});
