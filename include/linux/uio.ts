// Mirrors include/linux/uio.h (Linux 6.8): struct iov_iter, the cursor a ->read_iter/->write_iter
// fills or drains. Two kinds matter here: ITER_UBUF (one user buffer of the current process, read
// and written with copy_to_user/copy_from_user) and ITER_KVEC (a kernel buffer, for kernel_read
// and kernel_write). Operations live in lib/iov_iter.ts.

export const ITER_UBUF = 0;
export const ITER_KVEC = 2;

/** Direction: the iterator is the destination of a read (ITER_DEST) or the source of a write. */
export const ITER_DEST = 0; // READ
export const ITER_SOURCE = 1; // WRITE

/** How an ITER_UBUF iterator reaches user memory: the mm's copy_to_user/copy_from_user. */
export interface user_access {
  /** Returns the number of bytes NOT copied, as the kernel's copy_to_user(). */
  copy_to_user(to: number, from: Uint8Array, n: number): Promise<number>;
  /** Returns the number of bytes NOT copied, as the kernel's copy_from_user(). */
  copy_from_user(to: Uint8Array, from: number, n: number): Promise<number>;
}

export class iov_iter {
  /** Bytes already consumed from the start of the buffer. */
  iov_offset = 0;

  private constructor(
    readonly iter_type: number,
    readonly data_source: number,
    /** Bytes left. */
    public count: number,
    readonly ubuf: number,
    readonly kvec: Uint8Array | null,
    readonly uaccess: user_access | null,
  ) {}

  /** iov_iter_ubuf(): a single user buffer. */
  static ubuf(direction: number, buf: number, count: number, uaccess: user_access): iov_iter {
    return new iov_iter(ITER_UBUF, direction, count, buf, null, uaccess);
  }

  /** iov_iter_kvec() over one kvec: a kernel buffer. */
  static kvec(direction: number, buf: Uint8Array, count = buf.length): iov_iter {
    return new iov_iter(ITER_KVEC, direction, Math.min(count, buf.length), 0, buf, null);
  }
}

export function iov_iter_count(i: iov_iter): number {
  return i.count;
}
export function user_backed_iter(i: iov_iter): boolean {
  return i.iter_type === ITER_UBUF;
}
