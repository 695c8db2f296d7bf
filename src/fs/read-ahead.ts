// Read-ahead of small source files during the walk: escp_dir_scan hands regular files of at
// most ESCP_RA_FILE_MAX bytes to the kernel (posix_fadvise WILLNEED) so that a cold tree's
// files are fetched many at a time, with the disk's queue kept full, while the walk, the ssh
// login and the sending go on — instead of one synchronous 4 KiB read per file later. Measured
// on this machine's virtio disk: 10,000 cold 4 KiB files read one by one take 0.9–1.4 s, with
// the hints given first 0.4 s (docs/performance.md, "Many small files: read-ahead and start-up").

/** Bytes of small files a walk may have handed to the read-ahead beyond what was sent. */
export const READ_AHEAD_BYTES = 64 * 1024 * 1024;

/** A walk's read-ahead allowance, in one of two forms:
 * - a budget for one pass (the totals pass, during the ssh login): it ends for good at the
 *   first file it could not take, so what it covered is a prefix of the walk;
 * - a window that slides with the bytes sent (the entries pass), which starts after the prefix
 *   an earlier pass covered (`covered` bytes of such files, in walk order). */
export class ReadAhead {
  private advised = 0;
  private seen = 0; // bytes of files the read-ahead would take, listed so far
  private ended = false;

  constructor(
    private readonly window?: { sent: () => number; covered: number },
    private readonly limit = READ_AHEAD_BYTES,
  ) {}

  /** Bytes that may be handed to the read-ahead now. */
  allowance(): number {
    if (this.ended || (this.window && this.seen < this.window.covered)) return 0;
    const ahead = this.window ? Math.max(0, this.advised - this.window.sent()) : this.advised;
    return Math.max(0, this.limit - ahead);
  }

  /** One directory listed: `advised` bytes of it were read ahead, `eligible` could have been. */
  listed(advised: number, eligible: number, offered: boolean): void {
    this.advised += advised;
    this.seen += eligible;
    if (!this.window && offered && advised < eligible) this.ended = true;
  }

  /** Bytes handed to the read-ahead so far. */
  get total(): number {
    return this.advised;
  }
}
