// Mirrors arch/x86/lib/usercopy_64.c and the generic copy_{from,to}_user of
// include/linux/uaccess.h (Linux 6.8): kernel code copying to and from the current task's user
// memory. Each page goes through the MMU model in supervisor mode; a #PF runs the page-fault
// handler (which may sleep), and a fault it cannot resolve is "fixed up": the copy stops and
// the number of bytes NOT copied is returned. copy_from_user zero-fills what it could not copy.

import type { Kernel } from "../../../kernel/kernel.ts";
import type { mm_struct } from "../../../include/linux/mm_types.ts";
import { PAGE_SIZE, TASK_SIZE } from "../../../include/linux/mm.ts";
import { NODE_DATA } from "../../../include/linux/mmzone.ts";
import { cpu_access } from "../mm/fault.ts";
import { EFAULT } from "../../../include/uapi/asm-generic/errno.ts";

/** access_ok(addr, size): the range lies entirely in user space (no wrap). */
export function access_ok(addr: number, size: number): boolean {
  return addr >= 0 && size >= 0 && addr + size <= TASK_SIZE + PAGE_SIZE;
}

/** Copies page by page; `io` moves bytes once the page's physical address is known. */
async function copy_user(k: Kernel, uaddr: number, n: number, write: boolean, io: (pa: number, off: number, len: number) => void): Promise<number> {
  if (!n) return 0;
  k.might_sleep(write ? "copy_to_user" : "copy_from_user");
  if (NODE_DATA(k).page_alloc.fi.should_fail_usercopy()) return n;
  if (!access_ok(uaddr, n)) return n;
  const mm = k.current.mm as mm_struct | null;
  if (!mm) return n;
  let done = 0;
  while (done < n) {
    const va = uaddr + done;
    const len = Math.min(n - done, PAGE_SIZE - (va % PAGE_SIZE));
    const pa = await cpu_access(k, mm, va, write ? "write" : "read", false);
    if (pa < 0) break;
    io(pa, done, len);
    done += len;
  }
  return n - done;
}

/** copy_from_user(k, to, from, n): bytes not copied (the tail of `to` is zeroed). */
export async function copy_from_user(k: Kernel, to: Uint8Array, from: number, n: number): Promise<number> {
  const physmem = NODE_DATA(k).physmem;
  const left = await copy_user(k, from, n, false, (pa, off, len) => physmem.read_into(pa, to, off, len));
  if (left) to.fill(0, n - left, n);
  return left;
}

/** copy_to_user(k, to, from, n): bytes not copied. */
export async function copy_to_user(k: Kernel, to: number, from: Uint8Array, n: number): Promise<number> {
  const physmem = NODE_DATA(k).physmem;
  return copy_user(k, to, n, true, (pa, off, len) => physmem.write(pa, from, off, len));
}

/** clear_user(k, to, n): zero user memory; bytes not cleared. */
export async function clear_user(k: Kernel, to: number, n: number): Promise<number> {
  const physmem = NODE_DATA(k).physmem;
  return copy_user(k, to, n, true, (pa, _off, len) => physmem.fill(pa, len, 0));
}

/**
 * strncpy_from_user(k, dst, src, count): copy a NUL-terminated string of at most count bytes;
 * its length, or -EFAULT.
 */
export async function strncpy_from_user(k: Kernel, dst: Uint8Array, src: number, count: number): Promise<number> {
  for (let i = 0; i < count; i++) {
    const b = new Uint8Array(1);
    if (await copy_from_user(k, b, src + i, 1)) return -EFAULT;
    dst[i] = b[0]!;
    if (b[0] === 0) return i;
  }
  return count;
}
