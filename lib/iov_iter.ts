// Mirrors lib/iov_iter.c (Linux 6.8): copying between kernel buffers and an iov_iter. A copy into a
// user buffer may fault part-way; like the kernel it then returns the short count it managed.

import { ITER_KVEC, type iov_iter } from "../include/linux/uio.ts";

/** copy_to_iter(): copies up to `bytes` of `src` into the iterator; returns bytes copied. */
export async function copy_to_iter(src: Uint8Array, bytes: number, i: iov_iter): Promise<number> {
  const n = Math.min(bytes, src.length, i.count);
  if (n <= 0) return 0;
  let done: number;
  if (i.iter_type === ITER_KVEC) {
    i.kvec!.set(src.subarray(0, n), i.iov_offset);
    done = n;
  } else {
    done = n - (await i.uaccess!.copy_to_user(i.ubuf + i.iov_offset, src.subarray(0, n), n));
  }
  iov_iter_advance(i, done);
  return done;
}

/** copy_from_iter(): fills `dst` with up to `bytes` from the iterator; returns bytes copied. */
export async function copy_from_iter(dst: Uint8Array, bytes: number, i: iov_iter): Promise<number> {
  const n = Math.min(bytes, dst.length, i.count);
  if (n <= 0) return 0;
  let done: number;
  if (i.iter_type === ITER_KVEC) {
    dst.set(i.kvec!.subarray(i.iov_offset, i.iov_offset + n));
    done = n;
  } else {
    done = n - (await i.uaccess!.copy_from_user(dst, i.ubuf + i.iov_offset, n));
  }
  iov_iter_advance(i, done);
  return done;
}

export function iov_iter_advance(i: iov_iter, size: number): void {
  const n = Math.min(size, i.count);
  i.iov_offset += n;
  i.count -= n;
}

/** iov_iter_zero(): writes `bytes` zeros (reads of holes in a sparse file). */
export function iov_iter_zero(bytes: number, i: iov_iter): Promise<number> {
  return copy_to_iter(new Uint8Array(Math.min(bytes, i.count)), bytes, i);
}
