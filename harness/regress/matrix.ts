// The regression matrix: which catalog datasets, through which transports, with which escp
// configurations. --quick is sized for CI; --full is for people with time.
/** sshd-pull: the same loopback sshd, the dataset pulled from it (`host:src dst`).
 * three-party / three-party-direct: `-3 h1:src h2:dst` between two namespaced hosts of the
 * multi-host fixture, relayed through this host or --direct. */
export type Transport = "local" | "sshd" | "sshd-pull" | "wan" | "three-party" | "three-party-direct";

export interface DatasetCase {
  name: string; // catalog name for `bun run datasets make`
  params: string[]; // extra generator parameters
  label: string;
}

export interface ConfigCase {
  label: string;
  flags: string[];
}

export interface Matrix {
  datasets: DatasetCase[];
  transports: Transport[];
  configs: ConfigCase[];
}

const CONFIGS_QUICK: ConfigCase[] = [
  { label: "defaults (-t 4, 1M, O_DIRECT, BLAKE3)", flags: [] },
  { label: "-t 1 --blocksize 64K", flags: ["-t", "1", "--blocksize", "64K"] },
  { label: "-t 8 --nodirect --sparse", flags: ["-t", "8", "--nodirect", "--sparse"] },
];

export const QUICK: Matrix = {
  datasets: [
    { name: "big-random", params: ["--size", "64M"], label: "big-random 64 MiB" },
    { name: "losf-small", params: [], label: "losf-small" },
    { name: "edge", params: [], label: "edge" },
    { name: "sparse", params: ["--size", "64M"], label: "sparse 64 MiB" },
  ],
  transports: ["local", "sshd", "sshd-pull", "wan", "three-party"],
  configs: CONFIGS_QUICK,
};

export const FULL: Matrix = {
  datasets: [
    { name: "big-random", params: ["--size", "4G"], label: "big-random 4 GiB" },
    { name: "big-text", params: ["--size", "1G"], label: "big-text 1 GiB" },
    { name: "big-zero", params: ["--size", "1G"], label: "big-zero 1 GiB" },
    { name: "sparse", params: ["--size", "1G"], label: "sparse 1 GiB" },
    { name: "losf", params: [], label: "losf 65,536 files" },
    { name: "mixed", params: [], label: "mixed" },
    { name: "edge", params: [], label: "edge" },
  ],
  transports: ["local", "sshd", "sshd-pull", "wan", "three-party", "three-party-direct"],
  configs: [...CONFIGS_QUICK, { label: "-t 16 --blocksize 4M", flags: ["-t", "16", "--blocksize", "4M"] }, { label: "--nochecksum", flags: ["--nochecksum"] }],
};
