// Mirrors the printing half of lib/kunit/test.c (Linux 6.8: kunit_print_suite_start,
// kunit_print_ok_not_ok, kunit_print_attr, kunit_print_test_stats, kunit_print_suite_stats) and
// the printers of tools/testing/kunit (kunit_parser.py's human summary, kunit_json.py). The KTAP
// printer follows KUnit's raw output: 4-space indentation per level, "# Subtest:" headers,
// parameters as plan-less sub-blocks, stats lines only where a level has more than one subtest.
// The summary printer works on a generic test tree, so it prints parsed KTAP as well as runs.

import type { kunit_speed, kunit_status } from "./test.ts";

// ---- results (what the executor produces) ----------------------------------------------------------------------------------

/** One leaf result: a plain case or one parameter of a parameterised case. */
export interface kunit_result {
  name: string;
  status: kunit_status;
  status_comment: string;
  /** Diagnostic lines printed before the result line (test.log plus harness diagnostics). */
  log: string[];
}

export interface kunit_case_result extends kunit_result {
  /** The case's own speed attribute, when it sets one (printed as "# <case>.speed: ..."). */
  speed?: kunit_speed;
  /** One result per parameter for KUNIT_CASE_PARAM cases, otherwise null. */
  params: kunit_result[] | null;
}

export interface kunit_suite_result {
  name: string;
  module?: string;
  speed?: kunit_speed;
  status: kunit_status;
  status_comment: string;
  /** Non-zero when suite_init failed: no case ran and the suite failed. */
  suite_init_err: number;
  /** Suite-level diagnostics ("# failed to initialize (N)"). */
  log: string[];
  cases: kunit_case_result[];
}

export interface kunit_run_result {
  suites: kunit_suite_result[];
}

export interface kunit_result_stats {
  passed: number;
  failed: number;
  skipped: number;
  total: number;
}

/** A suite as it starts (what its KTAP header needs). */
export interface kunit_suite_header {
  name: string;
  module?: string;
  speed?: kunit_speed;
  n_cases: number;
}

export type kunit_event =
  | { kind: "start"; n_suites: number }
  | { kind: "suite_start"; index: number; suite: kunit_suite_header }
  | { kind: "case_start"; suite: string; case_name: string }
  | { kind: "case_end"; suite: string; index: number; result: kunit_case_result }
  | { kind: "suite_end"; index: number; result: kunit_suite_result }
  | { kind: "end"; result: kunit_run_result };


// ---- statistics (kunit_update_stats / kunit_accumulate_stats) ----------------------------------

export function kunit_stats_of(statuses: kunit_status[]): kunit_result_stats {
  const s = { passed: 0, failed: 0, skipped: 0, total: statuses.length };
  for (const st of statuses) {
    if (st === "success") s.passed++;
    else if (st === "failure") s.failed++;
    else s.skipped++;
  }
  return s;
}

/** Leaf results of a suite: parameters individually, as the "# Totals:" line counts them. */
export function kunit_suite_leaves(suite: kunit_suite_result): kunit_result[] {
  return suite.cases.flatMap((c) => c.params ?? [c]);
}

/** kunit_suite_has_succeeded(): failed on init error or any failed case; skipped if none passed. */
export function kunit_suite_status(init_err: number, cases: kunit_status[]): kunit_status {
  if (init_err || cases.includes("failure")) return "failure";
  return cases.includes("success") ? "success" : "skipped";
}

/** A parameterised case fails if any parameter failed, passes if any passed, else is skipped. */
export function kunit_param_case_status(params: kunit_result[]): kunit_status {
  return kunit_suite_status(0, params.map((p) => p.status));
}

export function kunit_run_failed(run: kunit_run_result): boolean {
  return run.suites.some((s) => s.status === "failure");
}

/** KUNIT_SUBTEST_INDENT. */
export const KUNIT_SUBTEST_INDENT = "    ";

export type Write = (line: string) => void;

// ---- raw KTAP ----------------------------------------------------------------------------------

/** kunit_print_ok_not_ok(): "ok N name", "not ok N name", "ok N name # SKIP reason". */
export function kunit_ok_not_ok(indent: string, status: kunit_status, n: number, name: string, comment: string): string {
  const head = `${indent}${status === "failure" ? "not ok" : "ok"} ${n} ${name}`;
  if (status !== "skipped") return head;
  return comment ? `${head} # SKIP ${comment}` : `${head} # SKIP`;
}

function stats_line(indent: string, name: string, s: kunit_result_stats): string {
  return `${indent}# ${name}: pass:${s.passed} fail:${s.failed} skip:${s.skipped} total:${s.total}`;
}

function log_lines(indent: string, log: readonly string[], write: Write): void {
  for (const l of log) write(l ? indent + l : "");
}

/** Prints KUnit KTAP as a run goes: feed it the executor's events. */
export class kunit_ktap_printer {
  constructor(private readonly write: Write) {}

  on_event = (e: kunit_event): void => {
    switch (e.kind) {
      case "start":
        this.write("KTAP version 1");
        this.write(`1..${e.n_suites}`);
        break;
      case "suite_start":
        this.suite_start(e.suite);
        break;
      case "case_end":
        this.case_end(e.index, e.result);
        break;
      case "suite_end":
        this.suite_end(e.index, e.result);
        break;
      default:
        break;
    }
  };

  private suite_start(s: kunit_suite_header): void {
    const ind = KUNIT_SUBTEST_INDENT;
    this.write(`${ind}KTAP version 1`);
    this.write(`${ind}# Subtest: ${s.name}`);
    if (s.speed) this.write(`${ind}# speed: ${s.speed}`);
    if (s.module) this.write(`${ind}# module: ${s.module}`);
    this.write(`${ind}1..${s.n_cases}`);
  }

  private case_end(n: number, c: kunit_case_result): void {
    const ind = KUNIT_SUBTEST_INDENT;
    if (c.params) this.params(c.name, c.params);
    log_lines(ind, c.log, this.write);
    if (c.speed) this.write(`${ind}# ${c.name}.speed: ${c.speed}`);
    if (c.params && c.params.length > 1) this.write(stats_line(ind, c.name, kunit_stats_of(c.params.map((p) => p.status))));
    this.write(kunit_ok_not_ok(ind, c.status, n, c.name, c.status_comment));
  }

  /** Parameters: a nested block without a plan (their number is not known in advance). */
  private params(name: string, params: readonly kunit_result[]): void {
    const ind = KUNIT_SUBTEST_INDENT + KUNIT_SUBTEST_INDENT;
    this.write(`${ind}KTAP version 1`);
    this.write(`${ind}# Subtest: ${name}`);
    for (const [i, p] of params.entries()) {
      log_lines(ind, p.log, this.write);
      this.write(kunit_ok_not_ok(ind, p.status, i + 1, p.name, p.status_comment));
    }
  }

  private suite_end(n: number, s: kunit_suite_result): void {
    const ind = KUNIT_SUBTEST_INDENT;
    log_lines(ind, s.log, this.write);
    if (s.cases.length > 1) this.write(stats_line(ind, s.name, kunit_stats_of(s.cases.map((c) => c.status))));
    const leaves = kunit_suite_leaves(s);
    if (leaves.length > 1) this.write(stats_line(ind, "Totals", kunit_stats_of(leaves.map((l) => l.status))));
    this.write(kunit_ok_not_ok("", s.status, n, s.name, s.status_comment));
  }
}

/** The whole KTAP document of a finished run (the same text the streaming printer writes). */
export function kunit_render_ktap(run: kunit_run_result): string {
  const out: string[] = [];
  const p = new kunit_ktap_printer((l) => out.push(l));
  for (const e of kunit_replay_events(run)) p.on_event(e);
  return out.join("\n") + "\n";
}

/** The events a run would have produced, for printing a finished run. */
export function* kunit_replay_events(run: kunit_run_result): Generator<kunit_event> {
  yield { kind: "start", n_suites: run.suites.length };
  for (const [i, s] of run.suites.entries()) {
    if (!s.suite_init_err) {
      yield { kind: "suite_start", index: i + 1, suite: { name: s.name, module: s.module, speed: s.speed, n_cases: s.cases.length } };
      for (const [j, c] of s.cases.entries()) yield { kind: "case_end", suite: s.name, index: j + 1, result: c };
    }
    yield { kind: "suite_end", index: i + 1, result: s };
  }
  yield { kind: "end", result: run };
}

// ---- the generic test tree (kunit_parser.py's Test) ---------------------------------------------

export type ktap_status = "success" | "failure" | "skipped" | "crashed" | "no_tests";

export interface ktap_test {
  name: string;
  status: ktap_status;
  /** The directive of the result line (SKIP, TODO, XFAIL, TIMEOUT, ERROR), if any. */
  directive: string | null;
  /** Text after the directive (the skip reason). */
  comment: string;
  /** Diagnostic lines that came before the result line. */
  log: string[];
  /** Null for a leaf; a parent is a test with its own KTAP block. */
  subtests: ktap_test[] | null;
  /** The plan of a parent's block, null when it printed none. */
  expected_count: number | null;
  /** Problems found while parsing this test. */
  errors: string[];
}

export interface ktap_counts {
  passed: number;
  failed: number;
  crashed: number;
  skipped: number;
  errors: number;
}

/** Leaf counts (a parent without subtests counts as one test), plus parse errors. */
export function ktap_count(t: ktap_test): ktap_counts {
  const c: ktap_counts = { passed: 0, failed: 0, crashed: 0, skipped: 0, errors: t.errors.length };
  if (t.subtests && t.subtests.length) {
    for (const s of t.subtests) {
      const sc = ktap_count(s);
      c.passed += sc.passed;
      c.failed += sc.failed;
      c.crashed += sc.crashed;
      c.skipped += sc.skipped;
      c.errors += sc.errors;
    }
    return c;
  }
  if (t.status === "success") c.passed++;
  else if (t.status === "failure") c.failed++;
  else if (t.status === "skipped") c.skipped++;
  else if (t.status === "crashed") c.crashed++;
  return c;
}

export function ktap_total(c: ktap_counts): number {
  return c.passed + c.failed + c.crashed + c.skipped;
}

function leaf(r: kunit_result): ktap_test {
  return {
    name: r.name, status: r.status, directive: r.status === "skipped" ? "SKIP" : null, comment: r.status_comment,
    log: [...r.log], subtests: null, expected_count: null, errors: [],
  };
}

function case_tree(c: kunit_case_result): ktap_test {
  if (!c.params) return leaf(c);
  return { ...leaf(c), subtests: c.params.map(leaf), expected_count: null };
}

export function ktap_tree_from_suite(s: kunit_suite_result): ktap_test {
  if (s.suite_init_err) return leaf(s);
  return { ...leaf(s), subtests: s.cases.map(case_tree), expected_count: s.cases.length };
}

/** The run as a tree rooted at an unnamed "main" test, as kunit.py sees a KTAP document. */
export function ktap_tree_from_run(run: kunit_run_result): ktap_test {
  const suites = run.suites.map(ktap_tree_from_suite);
  const failed = suites.some((s) => s.status === "failure");
  return {
    name: "main", status: failed ? "failure" : suites.length ? "success" : "no_tests", directive: null, comment: "",
    log: [], subtests: suites, expected_count: suites.length, errors: [],
  };
}

// ---- the human summary (kunit_parser.py print_*) -----------------------------------------------

const DIVIDER = "=".repeat(60);

/** format_test_divider(): the message centred in '=' to the divider's width (at least 3 each side). */
function test_divider(message: string, plain_len: number): string {
  let l1 = 3;
  let l2 = 3;
  const diff = DIVIDER.length - plain_len - 2;
  if (diff > 0) {
    l1 = Math.floor(diff / 2);
    l2 = diff - l1;
  }
  return `${"=".repeat(l1)} ${message} ${"=".repeat(l2)}`;
}

/** "[HH:MM:SS]" from elapsed milliseconds. */
export function elapsed_stamp(ms: number): string {
  const s = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `[${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}]`;
}

/** textwrap.dedent(): removes the indentation every non-blank line shares. */
function dedent(lines: readonly string[]): string[] {
  const widths = lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length);
  const cut = widths.length ? Math.min(...widths) : 0;
  return lines.map((l) => l.slice(Math.min(cut, /^ */.exec(l)![0].length)));
}

export interface summary_options {
  /** Elapsed milliseconds for the "[HH:MM:SS]" prefix; a constant 0 unless the caller measures. */
  now?: () => number;
  /** ANSI colours, as kunit.py uses on a terminal. */
  color?: boolean;
}

/** kunit.py's pretty printer: banners per parent test, [PASSED]/[FAILED]/[SKIPPED] per leaf. */
export class kunit_summary_printer {
  private readonly now: () => number;
  private readonly color: boolean;

  constructor(private readonly write: Write, opts: summary_options = {}) {
    this.now = opts.now ?? (() => 0);
    this.color = opts.color ?? false;
  }

  /** One timestamped line. */
  line(text: string): void {
    this.write(`${elapsed_stamp(this.now())} ${text}`);
  }

  private paint(code: number, text: string): string {
    return this.color ? `\x1b[1;${code}m${text}\x1b[0m` : text;
  }

  /** The opening divider, before the first suite. */
  begin(): void {
    this.line(DIVIDER);
  }

  /** Prints one test (a suite, usually) and everything under it. */
  test(t: ktap_test): void {
    for (const e of t.errors) this.line(`${this.paint(31, "[ERROR]")} Test: ${t.name}: ${e}`);
    if (t.subtests === null) {
      this.result(t);
      return;
    }
    const count = t.expected_count ? (t.expected_count === 1 ? "(1 subtest)" : `(${t.expected_count} subtests)`) : "";
    const header = `${t.name}${t.name ? " " : ""}${count}`;
    this.line(test_divider(header, header.length));
    for (const s of t.subtests) this.test(s);
    const [plain, painted] = this.format_result(t);
    this.line(test_divider(painted, plain.length));
  }

  /** The closing divider and "Testing complete. Ran N tests: ...". */
  end(root: ktap_test): void {
    this.line(DIVIDER);
    const c = ktap_count(root);
    const parts = [`passed: ${c.passed}`];
    if (c.failed) parts.push(`failed: ${c.failed}`);
    if (c.crashed) parts.push(`crashed: ${c.crashed}`);
    if (c.skipped) parts.push(`skipped: ${c.skipped}`);
    if (c.errors) parts.push(`errors: ${c.errors}`);
    const text = `Testing complete. Ran ${ktap_total(c)} tests: ${parts.join(", ")}`;
    const bad = c.failed || c.crashed || c.errors;
    this.line(this.paint(bad ? 31 : c.passed ? 32 : 33, text));
  }

  /** Whole trees at once: begin, every subtest of the root, end. */
  print(root: ktap_test): void {
    this.begin();
    for (const s of root.subtests ?? [root]) this.test(s);
    this.end(root);
  }

  private result(t: ktap_test): void {
    this.line(this.format_result(t)[1]);
  }

  /** format_test_result(): prints the log of a failed test and returns [plain, coloured] text. */
  private format_result(t: ktap_test): [string, string] {
    const tag = (code: number, label: string, name: string): [string, string] => [`${label} ${name}`, `${this.paint(code, label)} ${name}`];
    switch (t.status) {
      case "success":
        return tag(32, "[PASSED]", t.name);
      case "skipped":
        return tag(33, "[SKIPPED]", t.comment ? `${t.name}: ${t.comment}` : t.name);
      case "no_tests":
        return tag(33, "[NO TESTS RUN]", t.name);
      case "crashed":
        this.log(t);
        return tag(31, "[CRASHED]", t.name);
      case "failure":
        this.log(t);
        return tag(31, "[FAILED]", t.name);
    }
  }

  private log(t: ktap_test): void {
    for (const l of dedent(t.log)) this.line(this.paint(33, l));
  }
}

export function kunit_render_summary(root: ktap_test, opts: summary_options = {}): string {
  const out: string[] = [];
  new kunit_summary_printer((l) => out.push(l), opts).print(root);
  return out.join("\n") + "\n";
}

// ---- JSON (kunit_json.py) ----------------------------------------------------------------------

const JSON_STATUS: Record<ktap_status, string> = {
  success: "PASS", skipped: "SKIP", crashed: "ERROR", failure: "FAIL", no_tests: "FAIL",
};

interface json_group {
  name: string;
  sub_groups: json_group[];
  test_cases: Array<{ name: string; status: string }>;
  misc: Record<string, number>;
  [common: string]: unknown;
}

function json_group_of(t: ktap_test, common: Record<string, unknown>): json_group {
  const sub_groups: json_group[] = [];
  const test_cases: json_group["test_cases"] = [];
  for (const s of t.subtests ?? []) {
    if (s.subtests && s.subtests.length) sub_groups.push(json_group_of(s, common));
    else test_cases.push({ name: s.name, status: JSON_STATUS[s.status] });
  }
  const c = ktap_count(t);
  const misc = { tests: ktap_total(c), passed: c.passed, failed: c.failed, crashed: c.crashed, skipped: c.skipped, errors: c.errors };
  return { name: t.name, sub_groups, test_cases, misc, ...common };
}

/** kunit.py --json: KernelCI-style groups of test cases. */
export function kunit_render_json(root: ktap_test, machine = "kemu"): string {
  const common = {
    arch: "kemu", defconfig: machine, build_environment: "", lab_name: null, kernel: null, job: null, git_branch: "kselftest",
  };
  return JSON.stringify({ ...json_group_of(root, common), name: "KUnit Test Group" }, null, 4);
}
