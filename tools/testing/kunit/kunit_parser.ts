// kemu's counterpart of tools/testing/kunit/kunit_parser.py (Linux 6.8): reads KTAP (or TAP
// 13/14) out of any text — a dmesg capture, `kemu kunit run --raw_output`, a debugfs results
// file — into the test tree that lib/kunit/ktap.ts prints and counts.
//
// Unlike kunit.py, nesting is read from indentation: a structural line (version, "# Subtest:",
// plan, result) indented deeper than the current block opens a child block, and the first
// result line at a shallower level closes it and reports on it. That covers KUnit's 4-space
// blocks, the KTAP spec's 2-space blocks and TAP14's indented "# Subtest:" headers.

import type { ktap_status, ktap_test } from "../../../lib/kunit/ktap.ts";

const VERSION = /^(?:KTAP|TAP) version (\d+)\s*$/;
const PLAN = /^1\.\.(\d+)\s*(?:#.*)?$/;
const RESULT = /^(ok|not ok)\s+(\d+)\b\s*(?:-\s+)?([^#]*?)\s*(?:#\s*(.*))?$/;
const SUBTEST = /^# Subtest: (.*)$/;
const DIRECTIVE = /^(SKIP|TODO|XFAIL|XPASS|TIMEOUT|ERROR)\b\s*(.*)$/i;
/** Lines KUnit prints about its own counts; kept out of a parent's log. */
const STATS = /^# (?:[^:]+: pass:\d+ fail:\d+ skip:\d+ total:\d+|Totals: .*)$/;
const END = /^\s*kunit_end\s*$/;

interface Block {
  indent: number;
  name: string | null;
  plan: number | null;
  tests: ktap_test[];
  /** Diagnostics since the last result at this level. */
  log: string[];
  /** A finished child block waiting for the result line that reports on it. */
  child: Block | null;
}

function new_block(indent: number): Block {
  return { indent, name: null, plan: null, tests: [], log: [], child: null };
}

function status_of(ok: boolean, directive: string | null): ktap_status {
  switch (directive) {
    case "SKIP":
      return "skipped";
    case "TIMEOUT":
    case "ERROR":
      return "failure";
    case "TODO":
    case "XFAIL":
      return "success";
    default:
      return ok ? "success" : "failure";
  }
}

function test_of(name: string, status: ktap_status): ktap_test {
  return { name, status, directive: null, comment: "", log: [], subtests: null, expected_count: null, errors: [] };
}

/** Placeholders for results a plan promised but the output never gave (a crash, a cut log). */
function fill_missing(b: Block): string[] {
  if (b.plan === null || b.tests.length >= b.plan) return [];
  const missing = b.plan - b.tests.length;
  for (let i = 0; i < missing; i++) {
    const t = test_of("", "crashed");
    t.errors.push("missing subtest result line!");
    b.tests.push(t);
  }
  return [`expected ${b.plan} subtests, but ${b.plan - missing} reported`];
}

class Parser {
  private readonly stack: Block[];

  constructor(root_indent: number) {
    this.stack = [new_block(root_indent)];
  }

  private get top(): Block {
    return this.stack[this.stack.length - 1]!;
  }

  /** A child that never got its own result line: reported as crashed. */
  private flush_orphan(b: Block): void {
    const c = b.child;
    if (!c) return;
    b.child = null;
    const t = test_of(c.name ?? "", "crashed");
    t.subtests = c.tests;
    t.expected_count = c.plan;
    t.log = c.log;
    t.errors.push("test has no result line", ...fill_missing(c));
    b.tests.push(t);
  }

  private close_top(): void {
    const b = this.stack.pop()!;
    this.flush_orphan(b);
    const parent = this.top;
    this.flush_orphan(parent);
    parent.log.push(...b.log.filter((l) => !STATS.test(l)));
    b.log = [];
    parent.child = b;
  }

  /** Puts a structural line at `indent` into the right block, opening or closing blocks. */
  private level(indent: number, opens: boolean): void {
    while (this.stack.length > 1 && indent < this.top.indent) this.close_top();
    if (opens && indent > this.top.indent) {
      this.flush_orphan(this.top);
      this.stack.push(new_block(indent));
    }
  }

  line(raw: string): void {
    const text = raw.trimEnd();
    const content = text.trimStart();
    if (!content) return;
    const indent = text.length - content.length;
    let m: RegExpExecArray | null;
    if (VERSION.test(content)) {
      this.level(indent, true);
    } else if ((m = SUBTEST.exec(content)) && (indent > this.top.indent || this.top.name === null)) {
      this.level(indent, true);
      this.top.name = m[1]!.trim();
    } else if ((m = PLAN.exec(content))) {
      this.level(indent, true);
      this.top.plan = Number(m[1]);
      // Lines between the header and the plan ("# module: x") describe the block, not its first test.
      if (!this.top.tests.length) this.top.log = [];
    } else if ((m = RESULT.exec(content))) {
      this.level(indent, true);
      this.result(m[1] === "ok", Number(m[2]), m[3]!, m[4] ?? null);
    } else {
      const cut = indent >= this.top.indent ? this.top.indent : indent;
      this.top.log.push(text.slice(cut));
    }
  }

  private result(ok: boolean, n: number, name: string, rest: string | null): void {
    const b = this.top;
    const d = rest === null ? null : DIRECTIVE.exec(rest);
    const directive = d ? d[1]!.toUpperCase() : null;
    const t = test_of(name, status_of(ok, directive));
    t.directive = directive;
    t.comment = d ? d[2]! : (rest ?? "");
    const child = b.child;
    t.log = child ? b.log.filter((l) => !STATS.test(l)) : b.log;
    if (n !== b.tests.length + 1) t.errors.push(`Expected test number ${b.tests.length + 1} but found ${n}`);
    if (child) {
      t.errors.push(...fill_missing(child));
      t.subtests = child.tests;
      t.expected_count = child.plan;
      if (child.name !== null && child.name !== name) t.errors.push(`Subtest header "${child.name}" does not match result "${name}"`);
      if (child.tests.some((s) => s.status === "crashed")) t.status = "crashed";
    }
    b.tests.push(t);
    b.log = [];
    b.child = null;
  }

  finish(): ktap_test {
    while (this.stack.length > 1) this.close_top();
    const root = this.top;
    this.flush_orphan(root);
    const main = test_of(root.name ?? "main", "success");
    main.errors.push(...fill_missing(root));
    main.subtests = root.tests;
    main.expected_count = root.plan;
    main.log = root.log.filter((l) => !STATS.test(l));
    main.status = bubble(root.tests);
    return main;
  }
}

/** The status of a document from its top-level results. */
function bubble(tests: readonly ktap_test[]): ktap_status {
  if (tests.some((t) => t.status === "crashed")) return "crashed";
  if (tests.some((t) => t.status === "failure")) return "failure";
  if (tests.some((t) => t.status === "success")) return "success";
  return tests.length ? "skipped" : "no_tests";
}

/**
 * Parses the first KTAP/TAP document in `text`. Whatever stands before its version line (a
 * dmesg timestamp, a "# " prefix) is cut from every following line, as kunit.py does.
 */
export function parseKtap(text: string): ktap_test {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => /(?:KTAP|TAP) version \d+\s*$/.test(l));
  if (start < 0) {
    const t = test_of("main", "failure");
    t.subtests = [];
    t.errors.push("Could not find any KTAP output. Did any KUnit tests run?");
    return t;
  }
  const first = lines[start]!;
  const prefix_len = first.search(/K?TAP version/);
  const prefix = first.slice(0, prefix_len);
  const root_indent = /^ *$/.test(prefix) ? prefix.length : 0;
  const cut = root_indent ? 0 : prefix_len;
  const p = new Parser(root_indent);
  for (const l of lines.slice(start)) {
    if (END.test(l)) break;
    p.line(l.slice(cut));
  }
  return p.finish();
}

/** True if the parsed document reports any failure, crash or parse error (kunit.py's exit status). */
export function ktapFailed(root: ktap_test): boolean {
  const bad = (t: ktap_test): boolean =>
    t.status === "failure" || t.status === "crashed" || t.errors.length > 0 || (t.subtests ?? []).some(bad);
  return bad(root);
}
