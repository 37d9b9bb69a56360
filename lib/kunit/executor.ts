// Mirrors lib/kunit/executor.c, the run loop of lib/kunit/test.c and the filters of
// lib/kunit/attributes.c (Linux 6.8): glob and attribute filtering, listing, and running suites
// into structured results. Where the kernel prints as it goes, kemu reports events and results;
// lib/kunit/ktap.ts turns them into KTAP. Each case (each parameter of a parameterised case)
// boots its own machine, runs in a "kunit_try_catch" kthread, and the machine's shutdown check
// (leaks, unexpected splats) is part of its verdict.

import { boot } from "../../kernel/boot.ts";
import { MINIMAL_MACHINE, type MachineSpec } from "../../kernel/machine_spec.ts";
import type { Machine } from "../../kernel/machine.ts";
import { glob_match } from "../glob.ts";
import {
  KunitAbort, kunit,
  type kunit_case, type kunit_param, type kunit_speed, type kunit_suite,
} from "./test.ts";
import {
  kunit_param_case_status, kunit_suite_status,
  type kunit_case_result, type kunit_event, type kunit_result, type kunit_run_result, type kunit_suite_result,
} from "./ktap.ts";

export interface kunit_run_options {
  /** Replaces the seed of every machine a case boots (`--seed`). */
  seed?: number;
  on_event?: (e: kunit_event) => void;
}

// ---- filtering (executor.c kunit_filter_suites, attributes.c) ----------------------------------

const SPEEDS: readonly kunit_speed[] = ["normal", "slow", "very_slow"];
const OPS = ["<=", ">=", "!=", "<", ">", "="] as const;
type FilterOp = (typeof OPS)[number];

export interface kunit_attr_filter {
  attr: "speed" | "module";
  op: FilterOp;
  value: string;
}

/** A suite after filtering: the selected cases, and those `filter_action=skip` only reports. */
export interface kunit_filtered_suite {
  suite: kunit_suite;
  cases: Array<{ tcase: kunit_case; filtered_out: boolean }>;
}

export interface kunit_filter_options {
  /** "suite_glob[.case_glob]" (kunit.filter_glob). */
  filter_glob?: string;
  /** "speed>slow, module=foo" (kunit.filter). */
  filter?: string;
  /** "skip": report filtered-out cases as skipped instead of omitting them. */
  filter_action?: "skip";
}

/** kunit_next_attr_filter(): parses one "attr op value"; a string is the error message. */
function parse_one_filter(text: string): kunit_attr_filter | string {
  const t = text.trim();
  let at = -1;
  let op: FilterOp | undefined;
  for (let i = 0; i < t.length && op === undefined; i++) {
    op = OPS.find((o) => t.startsWith(o, i));
    if (op) at = i;
  }
  if (op === undefined) return `kunit executor: filter operation not found: ${t}`;
  const attr = t.slice(0, at).trim();
  const value = t.slice(at + op.length).trim();
  if (attr !== "speed" && attr !== "module") return `kunit executor: filter attribute not found: ${attr}`;
  if (attr === "speed" && !SPEEDS.includes(value as kunit_speed)) return `kunit executor: filter value not recognized: ${value}`;
  if (attr === "module" && op !== "=" && op !== "!=") return `kunit executor: filter operation not supported for module: ${op}`;
  return { attr, op, value };
}

/** Parses "speed>slow, module=foo"; returns the filters or an error message. */
export function kunit_parse_filters(text: string): kunit_attr_filter[] | string {
  const out: kunit_attr_filter[] = [];
  for (const part of text.split(",")) {
    if (!part.trim()) continue;
    const f = parse_one_filter(part);
    if (typeof f === "string") return f;
    out.push(f);
  }
  return out;
}

function compare(op: FilterOp, diff: number): boolean {
  switch (op) {
    case "<": return diff < 0;
    case "<=": return diff <= 0;
    case ">": return diff > 0;
    case ">=": return diff >= 0;
    case "!=": return diff !== 0;
    case "=": return diff === 0;
  }
}

/**
 * kunit_filter_attr_tests(): a case's own attribute value decides when set, else its suite's,
 * else the default (speed "normal", module unset).
 */
function case_passes(f: kunit_attr_filter, suite: kunit_suite, tcase: kunit_case): boolean {
  if (f.attr === "module") {
    const m = suite.attr?.module ?? "";
    return compare(f.op, m === f.value ? 0 : 1);
  }
  const speed = tcase.attr?.speed ?? suite.attr?.speed ?? "normal";
  return compare(f.op, SPEEDS.indexOf(speed) - SPEEDS.indexOf(f.value as kunit_speed));
}

/** kunit_filter_suites(): applies the glob, then each attribute filter; drops emptied suites. */
export function kunit_filter_suites(suites: readonly kunit_suite[], opts: kunit_filter_options = {}): kunit_filtered_suite[] | string {
  const filters = opts.filter ? kunit_parse_filters(opts.filter) : [];
  if (typeof filters === "string") return filters;
  const [suite_glob, case_glob] = split_glob(opts.filter_glob);
  const out: kunit_filtered_suite[] = [];
  for (const suite of suites) {
    if (suite_glob && !glob_match(suite_glob, suite.name)) continue;
    const cases = suite.test_cases
      .filter((c) => !case_glob || glob_match(case_glob, c.name))
      .map((tcase) => ({ tcase, filtered_out: !filters.every((f) => case_passes(f, suite, tcase)) }))
      .filter((c) => !c.filtered_out || opts.filter_action === "skip");
    if (cases.length) out.push({ suite, cases });
  }
  return out;
}

/** "suite_glob.case_glob": the suite part ends at the first dot. */
function split_glob(glob?: string): [string | undefined, string | undefined] {
  if (!glob) return [undefined, undefined];
  const dot = glob.indexOf(".");
  return dot < 0 ? [glob, undefined] : [glob.slice(0, dot), glob.slice(dot + 1)];
}

/** kunit_exec_list_tests(): "suite.case" lines; with attributes, their "# attr: value" lines too. */
export function kunit_list_tests(suites: readonly kunit_filtered_suite[], with_attr = false): string[] {
  const out = ["KTAP version 1"];
  for (const { suite, cases } of suites) {
    if (with_attr) {
      if (suite.attr?.speed) out.push(`# speed: ${suite.attr.speed}`);
      if (suite.attr?.module) out.push(`# module: ${suite.attr.module}`);
    }
    for (const { tcase } of cases) {
      out.push(`${suite.name}.${tcase.name}`);
      if (with_attr) out.push(`# ${tcase.name}.speed: ${tcase.attr?.speed ?? suite.attr?.speed ?? "normal"}`);
    }
  }
  return out;
}

// ---- running -----------------------------------------------------------------------------------

function describe_error(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** "last line seen": the first stack frame in a test file, like the kernel's last_seen. */
function last_seen(e: unknown): string | null {
  const stack = e instanceof Error ? (e.stack ?? "") : "";
  const m = /((?:test|tools)\/[^():\s]+\.ts):(\d+):\d+/.exec(stack);
  return m ? `${m[1]}:${m[2]}` : null;
}

/** The case body threw something other than KunitAbort: the try-catch "faulted". */
function kunit_try_faulted(test: kunit, e: unknown): void {
  const seen = last_seen(e);
  const lines = describe_error(e).split("\n");
  test.fail(`# ${test.name}: try faulted${seen ? `: last line seen ${seen}` : ""}`);
  for (const l of lines) test.fail(`# ${test.name}: ${l}`);
}

async function kunit_guard(test: kunit, fn: () => Promise<unknown> | unknown): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof KunitAbort)) kunit_try_faulted(test, e);
  }
}

/**
 * kunit_run_case_catch_errors(): init, the case body, exit, then deferred actions, all in one
 * kthread of the case's machine. exit and the cleanup run even if init failed, as in the kernel;
 * nothing more runs once the machine has halted (BUG).
 */
async function kunit_run_case_in_machine(suite: kunit_suite, tcase: kunit_case, test: kunit, machine: Machine): Promise<void> {
  const halted = () => machine.k.sched.halted !== null;
  await machine.run_kthread("kunit_try_catch", async () => {
    await kunit_guard(test, async () => {
      const ret = suite.init ? await suite.init(test) : 0;
      if (ret) {
        test.fail(`# ${test.name}: failed to initialize: ${ret}`);
        return;
      }
      await tcase.run_case(test);
    });
    if (!halted() && suite.exit) await kunit_guard(test, () => suite.exit!(test));
    if (!halted()) await kunit_guard(test, () => test.cleanup());
  }).catch((e: unknown) => kunit_try_faulted(test, e));
}

function machine_spec(suite: kunit_suite, opts: kunit_run_options): MachineSpec {
  const base = suite.machine ?? MINIMAL_MACHINE;
  return opts.seed === undefined ? { ...base } : { ...base, seed: opts.seed };
}

/** Runs one case body (or one parameter) on a freshly booted machine. */
export async function kunit_run_one(suite: kunit_suite, tcase: kunit_case, param: kunit_param | null, index: number,
  opts: kunit_run_options = {}): Promise<kunit_result> {
  let machine: Machine;
  try {
    machine = await boot(machine_spec(suite, opts));
  } catch (e) {
    return { name: param?.desc ?? tcase.name, status: "failure", status_comment: "",
      log: [`# ${tcase.name}: failed to boot the machine: ${describe_error(e)}`] };
  }
  const test = new kunit(tcase.name, machine);
  if (param) {
    test.param_value = param.value;
    test.param_index = index;
  }
  await kunit_run_case_in_machine(suite, tcase, test, machine);
  try {
    const problems = await machine.shutdown({ report_only: true, expected_splats: [...test.expected_splats] });
    for (const p of problems) test.fail(`# ${test.name}: shutdown: ${p}`);
  } catch (e) {
    test.fail(`# ${test.name}: shutdown faulted: ${describe_error(e)}`);
  }
  return { name: param ? (param.desc ?? `param-${index}`) : tcase.name, status: test.status,
    status_comment: test.status_comment, log: [...test.log] };
}

/** The parameters of a KUNIT_CASE_PARAM case, or a failure if the generator throws. */
function kunit_params(tcase: kunit_case): kunit_param[] | string {
  try {
    return tcase.generate_params!();
  } catch (e) {
    return `# ${tcase.name}: generate_params faulted: ${describe_error(e)}`;
  }
}

/** Runs a case: once, or once per parameter, each reported as a sub-test. */
export async function kunit_run_case(suite: kunit_suite, tcase: kunit_case, opts: kunit_run_options = {}): Promise<kunit_case_result> {
  const speed = tcase.attr?.speed;
  if (!tcase.generate_params) {
    const r = await kunit_run_one(suite, tcase, null, 0, opts);
    return { ...r, speed, params: null };
  }
  const params = kunit_params(tcase);
  if (typeof params === "string") return { name: tcase.name, status: "failure", status_comment: "", log: [params], speed, params: null };
  const results: kunit_result[] = [];
  for (let i = 0; i < params.length; i++) results.push(await kunit_run_one(suite, tcase, params[i]!, i, opts));
  return { name: tcase.name, status: kunit_param_case_status(results), status_comment: "", log: [], speed, params: results };
}

/** kunit_run_tests()'s suite_init step: 0, the error it returned, or -1 if it threw. */
export async function kunit_suite_init(suite: kunit_suite): Promise<{ err: number; log: string[] }> {
  if (!suite.suite_init) return { err: 0, log: [] };
  try {
    const err = await suite.suite_init(suite);
    return { err, log: err ? [`# failed to initialize (${err})`] : [] };
  } catch (e) {
    return { err: -1, log: [`# failed to initialize (${describe_error(e)})`] };
  }
}

export async function kunit_suite_exit(suite: kunit_suite): Promise<string[]> {
  try {
    await suite.suite_exit?.(suite);
    return [];
  } catch (e) {
    return [`# ${suite.name}: suite_exit faulted: ${describe_error(e)}`];
  }
}

/** A case filter_action=skip leaves in the plan: reported skipped, never run. */
function kunit_filtered_case(tcase: kunit_case): kunit_case_result {
  return { name: tcase.name, status: "skipped", status_comment: "", log: [], speed: tcase.attr?.speed, params: null };
}

/** kunit_run_tests(): suite_init once, every case, suite_exit once (even after an init failure). */
export async function kunit_run_tests(fs: kunit_filtered_suite, index: number, opts: kunit_run_options = {}): Promise<kunit_suite_result> {
  const { suite } = fs;
  const emit = opts.on_event ?? (() => {});
  const init = await kunit_suite_init(suite);
  const cases: kunit_case_result[] = [];
  if (!init.err) {
    emit({ kind: "suite_start", index, suite: { name: suite.name, module: suite.attr?.module, speed: suite.attr?.speed, n_cases: fs.cases.length } });
    for (const [i, { tcase, filtered_out }] of fs.cases.entries()) {
      emit({ kind: "case_start", suite: suite.name, case_name: tcase.name });
      const r = filtered_out ? kunit_filtered_case(tcase) : await kunit_run_case(suite, tcase, opts);
      cases.push(r);
      emit({ kind: "case_end", suite: suite.name, index: i + 1, result: r });
    }
  }
  const exit_log = await kunit_suite_exit(suite);
  const status = exit_log.length ? "failure" : kunit_suite_status(init.err, cases.map((c) => c.status));
  const result: kunit_suite_result = {
    name: suite.name, module: suite.attr?.module, speed: suite.attr?.speed, status, status_comment: "",
    suite_init_err: init.err, log: [...init.log, ...exit_log], cases,
  };
  emit({ kind: "suite_end", index, result });
  return result;
}

/** kunit_run_all_tests(): every suite in order, numbered from 1. */
export async function kunit_run_all_tests(suites: readonly kunit_filtered_suite[], opts: kunit_run_options = {}): Promise<kunit_run_result> {
  opts.on_event?.({ kind: "start", n_suites: suites.length });
  const result: kunit_run_result = { suites: [] };
  for (const [i, fs] of suites.entries()) result.suites.push(await kunit_run_tests(fs, i + 1, opts));
  opts.on_event?.({ kind: "end", result });
  return result;
}

/** Wraps whole suites (no filtering) for kunit_run_all_tests. */
export function kunit_all_cases(suites: readonly kunit_suite[]): kunit_filtered_suite[] {
  return suites.map((suite) => ({ suite, cases: suite.test_cases.map((tcase) => ({ tcase, filtered_out: false })) }));
}
