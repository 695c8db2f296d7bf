// BLAKE3 digests of files through the system `b3sum` binary (Debian package b3sum), the
// reference the tests trust independently of escp's own hashing.

const PATHS_PER_CALL = 1000; // keeps argv well under ARG_MAX for long nested paths

function b3sumBinary(): string {
  const found = Bun.which("b3sum");
  if (!found) throw new Error("b3sum is not installed: run `npm run setup` (apt package b3sum)");
  return found;
}

async function hashBatch(bin: string, paths: string[]): Promise<string[]> {
  // --no-names: one hex digest per line in argument order, so odd file names need no parsing.
  const proc = Bun.spawn([bin, "--no-names", "--", ...paths], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const digests = out.split("\n").filter((line) => line.length > 0);
  if (code !== 0 || digests.length !== paths.length) {
    throw new Error(`b3sum failed (exit ${code}, ${digests.length}/${paths.length} digests): ${err.trim()}`);
  }
  for (const d of digests) {
    if (!/^[0-9a-f]{64}$/.test(d)) throw new Error(`b3sum printed an unexpected line: ${d}`);
  }
  return digests;
}

/** Hex BLAKE3 digest (64 chars) of one file. Throws if the file cannot be read. */
export async function b3sum(path: string): Promise<string> {
  const [digest] = await hashBatch(b3sumBinary(), [path]);
  if (digest === undefined) throw new Error(`b3sum printed nothing for ${path}`);
  return digest;
}

/** Hex BLAKE3 digests in the order of `paths`, one b3sum process per 1000 paths. */
export async function b3sumMany(paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const bin = b3sumBinary();
  const result: string[] = [];
  for (let i = 0; i < paths.length; i += PATHS_PER_CALL) {
    result.push(...(await hashBatch(bin, paths.slice(i, i + PATHS_PER_CALL))));
  }
  return result;
}
