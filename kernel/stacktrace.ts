// Mirrors kernel/stacktrace.c (Linux 6.8): stack_trace_save() and stack_trace_print(). kemu's
// "stack" is the JavaScript call stack of the emulated code. Saving captures it without
// formatting (V8 formats lazily), so a saved trace costs little until someone prints it.

/** A saved call stack; frames are resolved only when printed. */
export class stack_trace {
  constructor(
    private readonly raw: Error,
    /** Innermost frames to drop (the saving helpers themselves). */
    private readonly skipnr: number,
  ) {}

  /** Frames as "function (file:line)", innermost first, without runtime internals. */
  frames(depth = 32): string[] {
    const lines = (this.raw.stack ?? "").split("\n").slice(1);
    const out: string[] = [];
    for (const l of lines) {
      const f = parse_frame(l);
      if (f) out.push(f);
    }
    return out.slice(this.skipnr, this.skipnr + depth);
  }
}

/** Repository-relative "file:line" of a V8 frame location, or null for runtime internals. */
function frame_location(loc: string): string | null {
  const m = /((?:file:\/\/)?[^()\s]+):(\d+):\d+$/.exec(loc);
  if (!m || /node:|node_modules|kernel\/stacktrace\.ts/.test(m[1]!)) return null;
  const file = m[1]!.replace(/^file:\/\//, "");
  const rel = /\/((?:kernel|mm|lib|drivers|iommu|arch|hw|tools|test|include|bench)\/.*)$/.exec(file);
  return `${rel ? rel[1] : file}:${m[2]}`;
}

/** "    at async Slab.kmalloc (/x/mm/slab_common.ts:10:3)" → "kmalloc (mm/slab_common.ts:10)". */
function parse_frame(line: string): string | null {
  const m = /^\s*at (?:async )?(?:(.*?) \((.*)\)|(.*))$/.exec(line);
  if (!m) return null;
  const loc = frame_location(m[2] ?? m[3] ?? "");
  if (!loc) return null;
  const fn = (m[1] ?? "").replace(/^new /, "").replace(/ \[as [^\]]*\]$/, "").split(".").pop() || "<anonymous>";
  return `${fn} (${loc})`;
}

/** stack_trace_save(): the current call stack minus `skipnr` callers (this file never shows). */
export function stack_trace_save(skipnr = 0): stack_trace {
  return new stack_trace(new Error(), skipnr);
}

/** stack_trace_print(): one line per frame, indented by `spaces`. */
export function stack_trace_print(trace: stack_trace, spaces: number, depth = 32): string[] {
  const pad = " ".repeat(spaces);
  return trace.frames(depth).map((f) => pad + f);
}
