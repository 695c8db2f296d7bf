// `bun run package`: builds the escp Debian package from this checkout. Runtime files only:
//   /usr/bin/escp                 the CLI as one executable (`bun build --compile src/cli/main.ts`)
//   /usr/lib/escp/libescp.so      the C data plane, freshly built (`make -C native`); the
//                                 binary finds it as ../lib/escp/ from its own real path
//                                 (src/runtime/self.ts), no environment variable needed
//   /usr/share/man/man1/escp.1.gz, bash and zsh completions (generated: docs/)
//   /usr/share/doc/escp/copyright
// Depends is what the two ELF files link (dpkg-shlibdeps reads their NEEDED entries and maps
// each library to its package and minimum version) plus openssh-client, the default transport.
// Usage: bun harness/package/build-deb.ts [--out FILE.deb]   (default dist/escp_<version>_<arch>.deb)
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

export const REPO = resolve(import.meta.dir, "..", "..");

export interface BuiltDeb {
  path: string;
  version: string;
  arch: string;
  depends: string;
  /** Installed paths, "/usr/bin/escp" style, files only. */
  files: string[];
}

function run(argv: string[], cwd = REPO): string {
  const r = Bun.spawnSync(argv, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} failed (exit ${r.exitCode ?? r.signalCode}): ${r.stderr.toString().trim()}`);
  }
  return r.stdout.toString();
}

function need(tool: string, pkg: string): void {
  if (!Bun.which(tool)) throw new Error(`${tool} is not installed (Debian package ${pkg}); it is needed to build the .deb`);
}

function listFiles(root: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = join(rel, e.name);
    if (e.isDirectory()) out.push(...listFiles(root, p));
    else out.push(`/${p}`);
  }
  return out.sort();
}

function put(stage: string, dest: string, data: Buffer | string, mode: number): void {
  const p = join(stage, dest);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
  chmodSync(p, mode);
}

function copyright(): string {
  // The license text the binary itself prints for -L (one source of truth).
  const lic = run([process.execPath, join(REPO, "src", "cli", "main.ts"), "--license"]).trimEnd();
  return [
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
    "Upstream-Name: escp",
    "",
    "Files: *",
    "Copyright: 2026, the escp authors",
    "License: BSD-3-Clause",
    ...lic.split("\n").map((l) => (l.trim() === "" ? " ." : ` ${l}`)),
    "",
  ].join("\n");
}

export async function buildDeb(opts: { out?: string } = {}): Promise<BuiltDeb> {
  need("dpkg-deb", "dpkg");
  need("dpkg-shlibdeps", "dpkg-dev");
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string; description: string };
  const version = pkg.version;
  const arch = run(["dpkg", "--print-architecture"]).trim();
  const out = resolve(opts.out ?? join(REPO, "dist", `escp_${version}_${arch}.deb`));

  // A fresh library: make rebuilds whatever is older than its sources.
  run(["make", "-s", "-C", join(REPO, "native"), "build/libescp.so"]);

  // dpkg-shlibdeps wants a source tree: <work>/debian/control, binaries under debian/<pkg>/.
  const work = mkdtempSync(join(tmpdir(), "escp-deb-"));
  try {
    const stage = join(work, "debian", "escp");
    mkdirSync(join(stage, "DEBIAN"), { recursive: true });
    writeFileSync(join(work, "debian", "control"), "Source: escp\n\nPackage: escp\nArchitecture: any\n");

    const exe = join(stage, "usr", "bin", "escp");
    mkdirSync(dirname(exe), { recursive: true });
    run([process.execPath, "build", "--compile", join(REPO, "src", "cli", "main.ts"), "--outfile", exe]);
    chmodSync(exe, 0o755);
    put(stage, "usr/lib/escp/libescp.so", readFileSync(join(REPO, "native", "build", "libescp.so")), 0o644);

    // Generated from the option table and checked in (bun run gen; the release checks keep them fresh).
    put(stage, "usr/share/man/man1/escp.1.gz", gzipSync(readFileSync(join(REPO, "docs", "escp.1")), { level: 9 }), 0o644);
    put(stage, "usr/share/bash-completion/completions/escp", readFileSync(join(REPO, "docs", "completion", "escp.bash")), 0o644);
    put(stage, "usr/share/zsh/vendor-completions/_escp", readFileSync(join(REPO, "docs", "completion", "_escp")), 0o644);
    put(stage, "usr/share/doc/escp/copyright", copyright(), 0o644);

    const shlibs = run(["dpkg-shlibdeps", "-O", "-e", "debian/escp/usr/bin/escp", "-e", "debian/escp/usr/lib/escp/libescp.so"], work);
    const m = /^shlibs:Depends=(.*)$/m.exec(shlibs);
    if (!m?.[1]) throw new Error(`dpkg-shlibdeps printed no shlibs:Depends: ${shlibs}`);
    const depends = `${m[1].trim()}, openssh-client`;

    const files = listFiles(stage).filter((f) => !f.startsWith("/DEBIAN/"));
    const installedKiB = Math.ceil(files.reduce((n, f) => n + statSync(join(stage, f)).size, 0) / 1024);
    writeFileSync(
      join(stage, "DEBIAN", "control"),
      [
        "Package: escp",
        `Version: ${version}`,
        `Architecture: ${arch}`,
        "Maintainer: escp authors <escp@localhost>",
        `Installed-Size: ${installedKiB}`,
        `Depends: ${depends}`,
        "Section: net",
        "Priority: optional",
        `Description: ${pkg.description}`,
        " escp copies files and trees to and from hosts reached over ssh, with the",
        " data on parallel encrypted TCP streams. This package holds the escp",
        " executable and its private libescp.so; the remote side needs escp too.",
        "",
      ].join("\n"),
    );

    mkdirSync(dirname(out), { recursive: true });
    rmSync(out, { force: true });
    // xz at -1: the 100 MB executable compresses to about the same size as at -6, far faster.
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z1", "--build", stage, out]);
    return { path: out, version, arch, depends, files };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--out" || a === "-o") out = args[++i];
    else if (a?.startsWith("--out=")) out = a.slice(6);
    else {
      console.error("usage: bun run package [--out FILE.deb]");
      process.exit(2);
    }
  }
  try {
    const deb = await buildDeb(out ? { out } : {});
    console.log(`${deb.path}\n  Depends: ${deb.depends}\n  ${deb.files.join("\n  ")}`);
  } catch (e) {
    console.error(`package: ${(e as Error).message}`);
    process.exit(1);
  }
}
