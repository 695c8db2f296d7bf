// Read-ahead of small source files during the walk: escp_dir_scan hands regular files of at
// most ESCP_RA_FILE_MAX bytes to the kernel (posix_fadvise WILLNEED) so that a cold tree's
// files are fetched many at a time, with the disk's queue kept full, while the walk, the ssh
// login and the sending go on — instead of one synchronous 4 KiB read per file later. Measured
// on this machine's virtio disk: 10,000 cold 4 KiB files read one by one take 0.9–1.4 s, with
// the hints given first 0.4 s (docs/performance.md, "Many small files: read-ahead").

/** Bytes of small files a walk may have handed to the read-ahead beyond what was sent. */
export const READ_AHEAD_BYTES = 64 * 1024 * 1024;

/** A walk's read-ahead allowance. With `sent` (bytes the sender has sent so far) it is a
 * window that slides with the transfer; without, a fixed budget for one pass. */
export class ReadAhead {
  private advised = 0;

  constructor(private readonly sent: () => number = () => 0, private readonly limit = READ_AHEAD_BYTES) {}

  /** Bytes that may be handed to the read-ahead now. */
  allowance(): number {
    return Math.max(0, this.limit - Math.max(0, this.advised - this.sent()));
  }

  spent(bytes: number): void {
    this.advised += bytes;
  }

  /** Bytes handed to the read-ahead so far (for the log). */
  get total(): number {
    return this.advised;
  }
}
