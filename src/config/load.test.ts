// Tests for option defaults and loadConfig precedence (CLI > env > config file > default).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EscpError } from "../errors/escp-error.ts";
import { loadConfig, readConfigFile } from "./load.ts";
import { defaultOptions, OPTION_TABLE } from "./options.ts";

const dir = mkdtempSync(join(tmpdir(), "escp-load-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function conf(name: string, yaml: string): string {
  const p = join(dir, name);
  writeFileSync(p, yaml);
  return p;
}

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect((e as EscpError).code).toBe("E_USAGE");
    return (e as Error).message;
  }
  throw new Error("expected an E_USAGE error");
}

// An empty config file: /etc/escp.conf on the test machine must not leak into these tests.
const NO_CONF = { ESCP_CONFIG: "/dev/null" };

describe("options table", () => {
  test("defaults", () => {
    expect(defaultOptions()).toEqual({
      port: 22,
      escpPort: 1232,
      escpPortrange: 10,
      verbose: false,
      quiet: false,
      limit: 0,
      preserve: false,
      compress: false,
      compressLevel: 3,
      sparse: false,
      recursive: false,
      archive: false,
      xattrs: false,
      sshOptions: [],
      ssh: "ssh",
      escp: "escp",
      blocksize: 1 << 20,
      bundleMax: 64 << 10,
      ioengine: "posix",
      ioengineRx: "posix",
      threads: 4,
      bits: false,
      nodirect: false,
      nochecksum: false,
      agent: false,
      batchMode: false,
      ipv4: false,
      ipv6: false,
      timeoutMs: 30_000,
      builtinSsh: false,
      localListen: false,
      thirdParty: false,
      direct: false,
      server: false,
      license: false,
      help: false,
      version: false,
      resume: true,
      retries: 3,
      json: false,
      numa: "auto",
      planDir: "escp-plan",
      runCmd: "escp",
      force: false,
    });
  });
  test("names are unique and env vars follow ESCP_<KEY>", () => {
    const longs = OPTION_TABLE.flatMap((o) => (o.long ? [o.long] : []));
    const shorts = OPTION_TABLE.flatMap((o) => (o.short ? [o.short] : []));
    expect(new Set(longs).size).toBe(longs.length);
    expect(new Set(shorts).size).toBe(shorts.length);
    for (const o of OPTION_TABLE) if (o.env && o.yamlKey) expect(o.env).toBe(`ESCP_${o.yamlKey.toUpperCase()}`);
  });
});

describe("loadConfig", () => {
  test("defaults, sources and destination", () => {
    const cfg = loadConfig(["a", "b", "u@h:/d"], NO_CONF);
    expect(cfg.opts).toEqual(defaultOptions());
    expect(cfg.sources).toEqual(["a", "b"]);
    expect(cfg.dest).toEqual({ user: "u", host: "h", path: "/d" });
    expect(cfg.filelistEntries).toEqual([]);
  });

  test("precedence: CLI > env > config file > default", () => {
    const file = conf("prec.yaml", 'threads: 8\nblocksize: 4M\nport: 2200\ncompress: true\ncpumask: "FF00"\nnodemask: "1"\n');
    const env = { ESCP_CONFIG: file, ESCP_THREADS: "12", ESCP_PORT: "2300" };
    const cfg = loadConfig(["-t", "16", "a", "h:"], env);
    expect(cfg.opts.threads).toBe(16); // CLI
    expect(cfg.opts.port).toBe(2300); // env over file
    expect(cfg.opts.blocksize).toBe(4 << 20); // file
    expect(cfg.opts.compress).toBe(true); // file
    expect(cfg.opts.cpumask).toBe("FF00");
    expect(cfg.opts.nodemask).toBe("1");
    expect(cfg.opts.timeoutMs).toBe(30_000); // default
    expect(loadConfig(["a", "h:"], env).opts.threads).toBe(12);
  });

  test("lists and ioengine from file and env", () => {
    const file = conf("list.yaml", 'ssh_options: ["A=1", "B=2"]\nioengine: dummy::posix\ntimeout: 5\n');
    const cfg = loadConfig(["a", "h:"], { ESCP_CONFIG: file });
    expect(cfg.opts.sshOptions).toEqual(["A=1", "B=2"]);
    expect(cfg.opts).toMatchObject({ ioengine: "dummy", ioengineRx: "posix", timeoutMs: 5000 });
    const cli = loadConfig(["-o", "C=3", "a", "h:"], { ESCP_CONFIG: file, ESCP_SSH_OPTIONS: "X=1\nY=2" });
    expect(cli.opts.sshOptions).toEqual(["C=3"]);
    expect(loadConfig(["a", "h:"], { ESCP_CONFIG: file, ESCP_SSH_OPTIONS: "X=1\nY=2" }).opts.sshOptions).toEqual(["X=1", "Y=2"]);
  });

  test("bad config values name the file and key", () => {
    const bs = conf("bs.yaml", "blocksize: 300K\n");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: bs }))).toBe(`${bs}: blocksize: 300K: must be a power of two between 64K and 64M`);
    const unknown = conf("unk.yaml", "thraeds: 4\n");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: unknown }))).toBe(`${unknown}: unknown key "thraeds"`);
    const hex = conf("hex.yaml", 'cpumask: "xyz"\n');
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: hex }))).toBe(`${hex}: cpumask: xyz: must be a hex string such as "ff00"`);
    const num = conf("num.yaml", "nodemask: 10\n");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: num }))).toContain(`${num}: nodemask: 10: must be a quoted hex string`);
    const yaml = conf("bad.yaml", "threads: [\n");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: yaml }))).toStartWith(`${yaml}: bad YAML`);
    const list = conf("notmap.yaml", "- a\n");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: list }))).toBe(`${list}: expected a YAML mapping of key: value`);
  });

  test("--numa: off, auto or a node number, from the CLI, env or config file", () => {
    expect(loadConfig(["a", "h:"], NO_CONF).opts.numa).toBe("auto");
    expect(loadConfig(["--numa", "off", "a", "h:"], NO_CONF).opts.numa).toBe("off");
    expect(loadConfig(["--numa", "1", "a", "h:"], NO_CONF).opts.numa).toBe("1");
    expect(loadConfig(["a", "h:"], { ...NO_CONF, ESCP_NUMA: "0" }).opts.numa).toBe("0");
    expect(loadConfig(["a", "h:"], { ESCP_CONFIG: conf("numa1.yaml", "numa: 1\n") }).opts.numa).toBe("1");
    expect(loadConfig(["a", "h:"], { ESCP_CONFIG: conf("numaoff.yaml", "numa: off\n") }).opts.numa).toBe("off");
    expect(usageMessage(() => loadConfig(["--numa", "near", "a", "h:"], NO_CONF))).toBe("--numa near: must be off, auto or a NUMA node number (0..1023)");
    expect(usageMessage(() => loadConfig(["--numa", "-1", "a", "h:"], NO_CONF))).toContain("must be off, auto or a NUMA node number");
    const big = conf("numabig.yaml", "numa: 5000\n");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: big }))).toBe(`${big}: numa: 5000: must be off, auto or a NUMA node number (0..1023)`);
  });

  test("an empty config file is fine", () => {
    expect(loadConfig(["a", "h:"], { ESCP_CONFIG: conf("empty.yaml", "# nothing\n") }).opts.threads).toBe(4);
    expect(loadConfig(["a", "h:"], NO_CONF).opts.threads).toBe(4);
  });

  test("a file named by ESCP_CONFIG must exist and be readable; a missing default file is fine", () => {
    const missing = join(dir, "does-not-exist.yaml");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: missing }))).toBe(`${missing} (ESCP_CONFIG): cannot read: No such file or directory`);
    expect(usageMessage(() => loadConfig(["a", "h:"], { ESCP_CONFIG: dir }))).toBe(`${dir} (ESCP_CONFIG): cannot read: Is a directory`);
    expect(readConfigFile(missing)).toEqual({}); // the default path (not named) may be absent
    expect(() => readConfigFile(missing, true)).toThrow(EscpError);
  });

  test("bad env values name the variable", () => {
    expect(usageMessage(() => loadConfig(["a", "h:"], { ...NO_CONF, ESCP_THREADS: "0" }))).toBe("ESCP_THREADS=0: must be an integer between 1 and 64");
    expect(usageMessage(() => loadConfig(["a", "h:"], { ...NO_CONF, ESCP_COMPRESS: "maybe" }))).toBe(
      "ESCP_COMPRESS=maybe: must be 1, 0, true, false, yes or no",
    );
  });

  test("combinations", () => {
    expect(usageMessage(() => loadConfig(["-4", "-6", "a", "h:"], NO_CONF))).toBe("-4 and -6: cannot be used together");
    expect(usageMessage(() => loadConfig(["--escp_port", "65530", "a", "h:"], NO_CONF))).toBe("--escp_portrange 10: ports 65530..65539 go past 65535");
  });

  test("help, version, license and server need no paths", () => {
    for (const f of ["-h", "-V", "-L", "--server"]) expect(loadConfig([f], NO_CONF).dest).toBeUndefined();
    expect(usageMessage(() => loadConfig([], NO_CONF))).toStartWith("missing source and destination; usage:");
  });

  test("--filelist reads entries", () => {
    const fl = conf("list.txt", "a\nb c\r\n\n");
    const cfg = loadConfig(["--filelist", fl, "h:/d"], NO_CONF);
    expect(cfg.filelistEntries).toEqual([{ src: "a" }, { src: "b c" }]);
    expect(cfg.sources).toEqual([]);
    expect(usageMessage(() => loadConfig(["--filelist", join(dir, "nope"), "h:"], NO_CONF))).toStartWith(`--filelist ${join(dir, "nope")}: cannot read`);
  });
});
