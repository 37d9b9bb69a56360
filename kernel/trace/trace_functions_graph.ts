// Mirrors kernel/trace/trace_functions_graph.c (Linux 6.8): how the function_graph tracer prints
// its buffer — the "# CPU  DURATION  FUNCTION CALLS" header, "func() {" / "}" for nested calls,
// "func();" with its duration for leaves, overhead marks, context-switch separators between
// tasks, and other events as "/* ... */" comments. Default options: funcgraph-cpu,
// funcgraph-overhead and funcgraph-duration on; funcgraph-proc, -abstime and -tail off.

import type { trace_entry } from "./trace.ts";

const TRACE_GRAPH_INDENT = 2;
const TRACE_GRAPH_PROCINFO_LENGTH = 14;

/** trace_find_mark(): the overhead mark for a duration in ns ('$' > 1 s ... '+' > 10 µs). */
export function trace_find_mark(ns: number): string {
  if (ns > 1e9) return "$";
  if (ns > 1e8) return "@";
  if (ns > 1e7) return "*";
  if (ns > 1e6) return "#";
  if (ns > 1e5) return "!";
  if (ns > 1e4) return "+";
  return " ";
}

/** trace_print_graph_duration(): "1.382 us " padded; at most 7 digits of µs plus ns. */
export function trace_print_graph_duration(ns: number): string {
  const usecs = String(Math.floor(ns / 1000));
  let s = usecs;
  let len = usecs.length;
  if (len < 7) {
    const nsecs = String(Math.floor(ns % 1000)).padStart(3, "0").slice(0, 7 - len);
    s += `.${nsecs}`;
    len += nsecs.length + 1;
  }
  return s + " us " + " ".repeat(Math.max(0, 8 - len));
}

/** print_graph_proc(): "comm-pid" with comm cut to 7 characters, centred in 14 columns. */
function print_graph_proc(comm: string, pid: number): string {
  const id = `${comm.slice(0, 7)}-${pid}`;
  const spaces = Math.max(0, TRACE_GRAPH_PROCINFO_LENGTH - id.length);
  return " ".repeat(Math.floor(spaces / 2)) + id + " ".repeat(spaces - Math.floor(spaces / 2));
}

const CPU = " 0) ";
const FILL_FULL = "              |  ";

function duration_col(ns: number): string {
  return `${trace_find_mark(ns)} ${trace_print_graph_duration(ns)}|  `;
}

function indent(depth: number): string {
  return " ".repeat(depth * TRACE_GRAPH_INDENT);
}

/** The identity a separator line compares (a pseudo context shows as pid 0 with its comm). */
function display_pid(e: trace_entry): number {
  return Math.max(e.pid, 0);
}

/** print_graph_headers_flags() with the default options. */
export function print_graph_headers(): string[] {
  return [
    "# tracer: function_graph",
    "#",
    "# CPU  DURATION                  FUNCTION CALLS",
    "# |     |   |                     |   |   |   |",
  ];
}

/** The body of the trace file under function_graph, entry by entry. */
export function print_graph_entries(entries: readonly trace_entry[]): string[] {
  const out: string[] = [];
  let last: string | null = null;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const who = `${e.comm}\0${display_pid(e)}`;
    if (last !== null && who !== last) {
      // verif_pid(): a context switch since the previous line.
      const prev = entries[i - 1]!;
      out.push(" ------------------------------------------");
      out.push(`${CPU}${print_graph_proc(prev.comm, display_pid(prev))} => ${print_graph_proc(e.comm, display_pid(e))}`);
      out.push(" ------------------------------------------", "");
    }
    last = who;
    const next = entries[i + 1];
    if (e.system === "ftrace" && e.name === "funcgraph_entry") {
      const f = e.fields as { func: string; depth: number };
      if (next && next.system === "ftrace" && next.name === "funcgraph_exit" && next.pid === e.pid &&
          next.comm === e.comm && (next.fields as { func: string }).func === f.func) {
        // get_return_for_leaf(): entry and return are adjacent, print one line.
        const r = next.fields as { calltime: number; rettime: number };
        out.push(`${CPU}${duration_col(r.rettime - r.calltime)}${indent(f.depth)}${f.func}();`);
        i++;
      } else {
        out.push(`${CPU}${FILL_FULL}${indent(f.depth)}${f.func}() {`);
      }
    } else if (e.system === "ftrace" && e.name === "funcgraph_exit") {
      const r = e.fields as { depth: number; calltime: number; rettime: number };
      out.push(`${CPU}${duration_col(r.rettime - r.calltime)}${indent(r.depth)}}`);
    } else {
      // print_graph_comment(): other events, indented inside the open call.
      out.push(`${CPU}${FILL_FULL}${indent(e.depth)}/* ${e.name}: ${e.text} */`);
    }
  }
  return out;
}
