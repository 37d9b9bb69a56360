// Mirrors include/linux/uaccess.h (Linux 6.8): the user-copy API drivers use; the x86-64
// implementation lives in arch/x86/lib/usercopy_64.ts.

export { access_ok, copy_from_user, copy_to_user, clear_user, strncpy_from_user } from "../../arch/x86/lib/usercopy_64.ts";

import type { Kernel } from "../../kernel/kernel.ts";
import { copy_from_user, copy_to_user } from "../../arch/x86/lib/usercopy_64.ts";
import { EFAULT } from "../uapi/asm-generic/errno.ts";

/** get_user() of a u32: the value, or -EFAULT. */
export async function get_user_u32(k: Kernel, addr: number): Promise<number | { err: number }> {
  const b = new Uint8Array(4);
  if (await copy_from_user(k, b, addr, 4)) return { err: -EFAULT };
  return new DataView(b.buffer).getUint32(0, true);
}

/** put_user() of a u32: 0 or -EFAULT. */
export async function put_user_u32(k: Kernel, value: number, addr: number): Promise<number> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return (await copy_to_user(k, addr, b, 4)) ? -EFAULT : 0;
}
