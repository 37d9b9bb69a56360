// Mirrors fs/tracefs/inode.c with the control files kernel/trace/trace.c and trace_events.c put
// in it (Linux 6.8): tracefs on /sys/kernel/tracing, also reachable as /sys/kernel/debug/tracing.
// The files front kernel/trace/trace.ts: trace (read the buffer; open with O_TRUNC clears it),
// set_event (enabled events; O_TRUNC disables all, writes enable "system:event", "!" disables),
// available_events and current_tracer.

import { inject, injectable } from "tsyringe";
import { S_IFDIR, S_IFREG } from "../../include/uapi/linux/stat.ts";
import { O_APPEND, O_TRUNC } from "../../include/uapi/asm-generic/fcntl.ts";
import { FMODE_WRITE, type file, type file_operations, type inode, type kiocb } from "../../include/linux/fs.ts";
import type { iov_iter } from "../../include/linux/uio.ts";
import { DEBUGFS, TRACE, VFS } from "../../kernel/tokens.ts";
import type { Tracing } from "../../kernel/trace/trace.ts";
import type { Vfs } from "../namespace.ts";
import type { Debugfs } from "../debugfs/inode.ts";
import { simple_new_entry, simple_write_iter_text } from "../libfs.ts";
import { seq_lseek, seq_puts, seq_read_iter, single_open, single_release } from "../seq_file.ts";

export const TRACEFS_MAGIC = 0x74726163;

/** A text file: `show` on read, each written line to `write` (0 or -errno), `trunc` on O_TRUNC. */
function trace_text_fops(show: () => string, write: ((line: string) => number) | null, trunc: (() => void) | null): file_operations {
  return {
    open: (_i: inode, f: file) => {
      if (trunc && (f.f_mode & FMODE_WRITE) && (f.f_flags & O_TRUNC) && !(f.f_flags & O_APPEND)) trunc();
      return single_open(f, (m) => seq_puts(m, show()), null);
    },
    read_iter: seq_read_iter,
    llseek: seq_lseek,
    release: single_release,
    write_iter: async (iocb: kiocb, from: iov_iter) => {
      const n = from.count;
      const text = await simple_write_iter_text(from, 4096);
      if (typeof text === "number") return text;
      for (const line of text.split(/[\n\s]+/).filter(Boolean)) {
        const err = write ? write(line) : 0;
        if (err) return err;
      }
      iocb.ki_pos += n;
      return n;
    },
  };
}

@injectable()
export class Tracefs {
  constructor(
    @inject(VFS) vfs: Vfs,
    @inject(TRACE) private readonly tr: Tracing,
    @inject(DEBUGFS) debugfs: Debugfs,
  ) {
    const sb = vfs.sget({ name: "tracefs" }, TRACEFS_MAGIC);
    sb.s_fs_info = this;
    const root = vfs.make_root(sb, S_IFDIR | 0o700);
    const lines = (l: string[]) => l.map((x) => `${x}\n`).join("");
    const files: Array<[string, number, file_operations]> = [
      ["trace", 0o644, trace_text_fops(() => this.tr.trace_output(), null, () => this.tr.trace_clear())],
      ["set_event", 0o644, trace_text_fops(() => lines(this.tr.read_set_event()), (l) => this.tr.set_event(l),
        () => this.tr.read_set_event().forEach((e) => this.tr.set_event(e, false)))],
      ["available_events", 0o444, trace_text_fops(() => lines(this.tr.available_events()), null, null)],
      ["current_tracer", 0o644, trace_text_fops(() => `${this.tr.current_tracer}\n`, (l) => this.tr.set_current_tracer(l), null)],
    ];
    for (const [name, mode, fops] of files) {
      const d = simple_new_entry(root, name, S_IFREG | mode);
      if (typeof d !== "number") d.d_inode!.i_fop = fops;
    }
    vfs.mount(sb, "/sys/kernel/tracing");
    // The debugfs automount point of older tools (/sys/kernel/debug/tracing).
    debugfs.debugfs_create_dir("tracing", null);
    vfs.mount(sb, "/sys/kernel/debug/tracing");
  }
}
