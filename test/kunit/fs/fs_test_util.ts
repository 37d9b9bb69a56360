// Helpers shared by the fs KUnit suites: reading and writing files from kernel code (filp_open +
// kernel_read/kernel_write, as a driver's test would), and a descriptor table for the test thread
// so the fd-level calls (do_sys_open, close) have somewhere to put descriptors.

import { VFS } from "../../../kernel/tokens.ts";
import type { Vfs } from "../../../fs/namespace.ts";
import { filp_open } from "../../../fs/open.ts";
import { kernel_read, kernel_write } from "../../../fs/read_write.ts";
import { __fput_sync } from "../../../fs/file_table.ts";
import { exit_files, files_struct } from "../../../fs/file.ts";
import { O_RDONLY, O_WRONLY } from "../../../include/uapi/asm-generic/fcntl.ts";
import { kunit_add_action, type kunit } from "../../../lib/kunit/test.ts";

export function vfs_of(test: kunit): Vfs {
  return test.machine.symbol(VFS);
}

/** The whole text of `path`, or the -errno of open/read. */
export async function kcat(test: kunit, path: string): Promise<string | number> {
  const f = await filp_open(vfs_of(test), path, O_RDONLY);
  if (typeof f === "number") return f;
  try {
    const chunks: Uint8Array[] = [];
    const pos = { pos: 0 };
    for (;;) {
      const buf = new Uint8Array(4096);
      const n = await kernel_read(f, buf, buf.length, pos);
      if (n < 0) return n;
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
    }
    return new TextDecoder().decode(Buffer.concat(chunks));
  } finally {
    await __fput_sync(f);
  }
}

/** Writes `text` to `path` in one write (echo), returning bytes written or -errno. */
export async function kecho(test: kunit, path: string, text: string, flags = O_WRONLY): Promise<number> {
  const f = await filp_open(vfs_of(test), path, flags, 0o644);
  if (typeof f === "number") return f;
  try {
    const b = new TextEncoder().encode(text);
    return await kernel_write(f, b, b.length, { pos: 0 });
  } finally {
    await __fput_sync(f);
  }
}

/** Gives the test's kernel thread a descriptor table, closed again when the case ends. */
export function kunit_give_files(test: kunit): files_struct {
  const t = test.k.current;
  const files = new files_struct();
  t.files = files;
  // Closing from a kernel thread hands each last fput to a delayed_fput context.
  kunit_add_action(test, () => exit_files(t));
  return files;
}
