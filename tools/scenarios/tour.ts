// kemu tooling: turns a traced run into a guided-tour page — the kernel functions in call order
// (each linked to its kemu file and named with its Linux file), a Mermaid sequence diagram of
// the calls between files, and the function_graph excerpt. Everything on the page comes from
// the run, so the picture cannot drift from the code.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ftrace_patched_sites } from "../../include/linux/ftrace.ts";
import type { call_record, ScenarioResult } from "./runner.ts";
import type { Scenario } from "./scenario.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Directories holding kernel-mirror code. */
const KERNEL_DIRS = ["kernel", "mm", "arch", "lib", "drivers", "iommu", "include", "fs", "hw"];

/** Where a traced function lives: the kemu file and the Linux file it mirrors. */
export interface func_source {
  kemu: string;
  linux: string;
}

/** Syscalls: the Linux file with the SYSCALL_DEFINE (kemu's table is arch/x86/entry/syscall_64.ts). */
const SYSCALL_HOMES: Record<string, string> = {
  ioctl: "fs/ioctl.c", mmap: "arch/x86/kernel/sys_x86_64.c", munmap: "mm/mmap.c", mprotect: "mm/mprotect.c",
  madvise: "mm/madvise.c", fork: "kernel/fork.c", clone: "kernel/fork.c", exit: "kernel/exit.c",
  exit_group: "kernel/exit.c", read: "fs/read_write.c", write: "fs/read_write.c", pread64: "fs/read_write.c",
  pwrite64: "fs/read_write.c", lseek: "fs/read_write.c", open: "fs/open.c", openat: "fs/open.c", close: "fs/open.c",
};

/** Functions whose Linux home is not the first file their kemu file mirrors. */
const LINUX_OVERRIDES: Record<string, string> = { do_syscall_64: "arch/x86/entry/common.c" };

function walk_ts(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk_ts(p, out);
    else if (name.endsWith(".ts")) out.push(p);
  }
}

/** "Mirrors a/b.c ..." on a file's first comment line: the first Linux path named. */
function mirrored_path(text: string): string | null {
  const m = /^\/\/ Mirrors\b.*?\b([\w.-]+(?:\/[\w.-]+)+\.[ch])\b/m.exec(text.split("\n").slice(0, 3).join("\n"));
  return m ? m[1]! : null;
}

/**
 * Every traced function of the tree: from ftrace scopes in kernel files (by name) and patched
 * methods (by "file#name", since a method may share its name with a function elsewhere).
 */
export function function_sources(): Map<string, func_source> {
  const files: string[] = [];
  for (const d of KERNEL_DIRS) walk_ts(join(REPO_ROOT, d), files);
  const out = new Map<string, func_source>();
  const add = (key: string, func: string, kemu: string, text: string) => {
    if (out.has(key)) return;
    out.set(key, { kemu, linux: LINUX_OVERRIDES[func] ?? mirrored_path(text) ?? kemu });
  };
  const texts = new Map<string, string>();
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    const rel = relative(REPO_ROOT, f);
    texts.set(rel, text);
    for (const m of text.matchAll(/\bftrace(?:_call)?\([^;]*?,\s*"([\w.$]+)"/g)) add(m[1]!, m[1]!, rel, text);
  }
  for (const s of ftrace_patched_sites()) add(`${s.file}#${s.func}`, s.func, s.file, texts.get(s.file) ?? "");
  return out;
}

/** The source of `func` (recorded at `site`, if known), including the __x64_sys_* entries. */
export function source_of(func: string, sources: Map<string, func_source>, site?: string): func_source | null {
  const known = sources.get(site ? `${site}#${func}` : func);
  if (known) return known;
  const sys = /^__x64_sys_(\w+)$/.exec(func);
  if (sys) return { kemu: "arch/x86/entry/syscall_64.ts", linux: SYSCALL_HOMES[sys[1]!] ?? "arch/x86/entry/syscall_64.c" };
  return null;
}

// ---- the call tree -------------------------------------------------------------------------------

export interface call_node {
  /** "" for a repeat group. */
  func: string;
  /** The kemu file, when the trace recorded it. */
  site?: string;
  ctx: string;
  children: call_node[];
  /** Identical consecutive siblings folded into this one (or repeats of the group's block). */
  times: number;
  /** A repeat group: this sequence of sibling calls happened `times` times in a row. */
  block?: call_node[];
}

/** The calls as one tree per top-level call, in call order. */
export function call_forest(calls: readonly call_record[]): call_node[] {
  const nodes = calls.map((c): call_node => ({ func: c.func, site: c.site, ctx: c.ctx, children: [], times: 1 }));
  const roots: call_node[] = [];
  calls.forEach((c, i) => (c.parent >= 0 ? nodes[c.parent]!.children : roots).push(nodes[i]!));
  return roots;
}

function signature(n: call_node): string {
  const inner = (n.block ?? n.children).map(signature).join(",");
  return `${n.ctx}:${n.site ?? ""}#${n.func}(${inner})x${n.times}`;
}

/** Longest sibling sequence fold() looks for repeats of. */
const MAX_BLOCK = 4;

/** How many times siblings [i, i+k) repeat back to back from i. */
function repeats(sigs: readonly string[], i: number, k: number): number {
  let reps = 1;
  const same = (a: number, b: number) => sigs.slice(a, a + k).every((s, j) => s === sigs[b + j]);
  while (i + (reps + 1) * k <= sigs.length && same(i, i + reps * k)) reps++;
  return reps;
}

/**
 * Folds repeats: identical consecutive sibling calls (same function, same subtree) become one
 * node ×N, and a repeated sequence of up to MAX_BLOCK siblings becomes a group ×N.
 */
export function fold(nodes: readonly call_node[]): call_node[] {
  const m = nodes.map((n): call_node => ({ ...n, children: fold(n.children) }));
  const sigs = m.map(signature);
  const out: call_node[] = [];
  for (let i = 0; i < m.length; ) {
    let best = { k: 1, reps: 1 };
    for (let k = 1; k <= MAX_BLOCK && i + 2 * k <= m.length; k++) {
      const reps = repeats(sigs, i, k);
      if (reps >= 2 && reps * k > best.reps * best.k) best = { k, reps };
    }
    if (best.reps === 1) out.push(m[i]!);
    else if (best.k === 1) out.push({ ...m[i]!, times: m[i]!.times * best.reps });
    else out.push({ func: "", ctx: m[i]!.ctx, children: [], times: best.reps, block: m.slice(i, i + best.k) });
    i += best.k * best.reps;
  }
  return out;
}

// ---- the page ------------------------------------------------------------------------------------

function link(src: func_source | null, from_dir: string): string {
  if (!src) return "";
  return `[${src.kemu}](${relative(from_dir, join(REPO_ROOT, src.kemu))})`;
}

/** The nested list of calls: `func()` — Linux file — kemu file. */
function call_list(forest: readonly call_node[], sources: Map<string, func_source>, from_dir: string): string[] {
  const lines: string[] = [];
  let ctx = "";
  /** `in_group`: a call of a folded group of top-level calls, which names its own context. */
  const walk = (n: call_node, depth: number, in_group = false) => {
    if (n.block) {
      lines.push(`${"  ".repeat(depth)}- ×${n.times}:`);
      for (const b of n.block) walk(b, depth + 1, in_group || depth === 0);
      return;
    }
    const src = source_of(n.func, sources, n.site);
    const times = n.times > 1 ? ` ×${n.times}` : "";
    const where = src ? ` — ${src.linux} — ${link(src, from_dir)}` : "";
    const who = in_group && depth > 0 && n.ctx !== ctx ? ` (in \`${n.ctx}\`)` : "";
    lines.push(`${"  ".repeat(depth)}- \`${n.func}()\`${times}${who}${where}`);
    for (const c of n.children) walk(c, depth + 1);
  };
  for (const root of forest) {
    if (root.ctx !== ctx) {
      lines.push(`${lines.length ? "\n" : ""}In \`${root.ctx}\`:\n`);
      ctx = root.ctx;
    }
    walk(root, 0);
  }
  return lines;
}

/** Mermaid participant ids must be plain words. */
function lane_id(label: string, lanes: Map<string, string>): string {
  let id = lanes.get(label);
  if (!id) {
    id = `P${lanes.size}`;
    lanes.set(label, id);
  }
  return id;
}

/** The context as the sequence diagram's caller of its top-level calls. */
function ctx_lane(ctx: string, kind: string): string {
  const comm = ctx.replace(/-\d+$/, "").replace(/ \(.*\)$/, "");
  return kind === "user" ? `${comm} (user space)` : `${comm} (${kind})`;
}

/**
 * A sequence diagram: one participant per Linux file (and one per context as the caller of its
 * top-level calls), an arrow for each call that crosses files, folded repeats as loops.
 */
export function sequence_diagram(forest: readonly call_node[], calls: readonly call_record[], sources: Map<string, func_source>, max_depth = 99): string[] {
  const kinds = new Map(calls.map((c) => [c.ctx, c.kind]));
  const lanes = new Map<string, string>();
  const body: string[] = [];
  let ctx = "";
  const lane_of = (n: call_node) => source_of(n.func, sources, n.site)?.linux ?? "?";
  /** Lines for `n` called from lane `from`; a loop only around arrows that are drawn. */
  const walk = (n: call_node, from: string, depth: number, indent: string): string[] => {
    const loop = (times: number, inner: string[]): string[] =>
      times > 1 && inner.some((l) => l.includes("->>")) ? [`${indent}loop ${times} times`, ...inner, `${indent}end`] : inner;
    if (n.block) return loop(n.times, n.block.flatMap((b) => walk(b, from, depth, `${indent}  `)));
    const to = lane_of(n);
    const crosses = to !== from;
    const drawn = crosses && depth <= max_depth;
    const inner_indent = drawn && n.times > 1 ? `${indent}  ` : indent;
    const lines = drawn ? [`${inner_indent}${lane_id(from, lanes)}->>${lane_id(to, lanes)}: ${n.func}()`] : [];
    for (const c of n.children) lines.push(...walk(c, to, depth + (crosses ? 1 : 0), inner_indent));
    return drawn ? loop(n.times, lines) : lines;
  };
  /**
   * A top-level call under a note naming its context when that changes; a folded group of
   * top-level calls may span contexts (a kworker woken by an interrupt, again and again), so its
   * loop body names the context of its first call and of every change inside it.
   */
  const root_lines = (root: call_node, indent: string): string[] => {
    if (root.block) {
      ctx = "";
      const inner = root.block.flatMap((b) => root_lines(b, `${indent}  `));
      return root.times > 1 && inner.some((l) => l.includes("->>")) ? [`${indent}loop ${root.times} times`, ...inner, `${indent}end`] : inner;
    }
    const caller = ctx_lane(root.ctx, kinds.get(root.ctx) ?? "kthread");
    const lines: string[] = [];
    if (root.ctx !== ctx) {
      lines.push(`${indent}Note over ${lane_id(caller, lanes)}: ${root.ctx}`);
      ctx = root.ctx;
    }
    lines.push(...walk(root, caller, 0, indent));
    return lines;
  };
  for (const root of forest) body.push(...root_lines(root, "  "));
  const participants = [...lanes].map(([label, id]) => `  participant ${id} as ${label}`);
  return ["sequenceDiagram", ...participants, ...body];
}

/** The diagram, shedding deeper calls until it has at most `max_arrows` arrows. */
function bounded_diagram(forest: readonly call_node[], calls: readonly call_record[], sources: Map<string, func_source>, max_arrows = 60): string[] {
  let d = sequence_diagram(forest, calls, sources);
  for (let depth = 12; depth >= 1 && d.filter((l) => l.includes("->>")).length > max_arrows; depth--) {
    d = sequence_diagram(forest, calls, sources, depth);
  }
  return d;
}

const EXCERPT_LINES = 160;
/** Entries of the call list shown before it is cut. */
const LIST_LINES = 200;

/** The tour page of one scenario run (markdown), for a file in `page_dir`. */
export function render_tour(s: Scenario, r: ScenarioResult, sources: Map<string, func_source>, page_dir: string): string {
  const forest = fold(call_forest(r.calls));
  const trace = r.trace_text.trimEnd().split("\n");
  const excerpt = trace.length > EXCERPT_LINES
    ? [...trace.slice(0, EXCERPT_LINES), `... (${trace.length - EXCERPT_LINES} more lines: \`npx kemu trace ${s.name}\` writes the whole trace)`]
    : trace;
  const missing = [...new Set(r.calls.filter((c) => !source_of(c.func, sources, c.site)).map((c) => c.func))];
  const list = call_list(forest, sources, page_dir);
  const shown = list.length > LIST_LINES
    ? [...list.slice(0, LIST_LINES), "", `… and ${list.length - LIST_LINES} more entries: \`npx kemu trace ${s.name}\` has the whole call tree.`]
    : list;
  return [
    `# ${s.title}`,
    "",
    `<!-- Generated by tools/scenarios/gen-tours.ts from a real run; do not edit. Regenerate with: npx tsx tools/scenarios/gen-tours.ts -->`,
    "",
    `Scenario \`${s.name}\` (${link({ kemu: scenario_file(s), linux: "" }, page_dir)}), machine \`${r.machine}\`, seed ${r.seed}.` +
      (s.reference ? ` Reference: the call chain of ${s.reference} (../shared/reference/).` : ""),
    `Reproduce with \`npx kemu trace ${s.name}\` (ftrace text and Perfetto JSON).`,
    "",
    s.description ?? "",
    "",
    "## The kernel functions, in call order",
    "",
    "Each entry is the function as Linux names it, the Linux file it lives in, and its kemu file. Repeated identical calls are folded (×N).",
    "",
    ...shown,
    ...(missing.length ? ["", `Not linked (no traced definition found): ${missing.map((f) => `\`${f}\``).join(", ")}.`] : []),
    "",
    "## Sequence diagram",
    "",
    "One participant per Linux file; an arrow for each call from one file into another.",
    "",
    "```mermaid",
    ...bounded_diagram(forest, r.calls, sources),
    "```",
    "",
    "## Trace",
    "",
    "The function_graph trace of the studied window (virtual-time durations; trace events as comments):",
    "",
    "```",
    ...excerpt,
    "```",
    "",
  ].join("\n");
}

/** Where a built-in scenario's source is. */
export function scenario_file(s: Scenario): string {
  return `tools/scenarios/builtin/${s.name.replace(/-/g, "_")}.ts`;
}
