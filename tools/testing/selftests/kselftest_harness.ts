// kemu's tools/testing/selftests/kselftest_harness.h (Linux 6.8), for user-space selftests
// written in TypeScript. A selftest "program" holds fixtures (FIXTURE, with setup/teardown and
// variants) and tests (TEST, TEST_F); running it prints kselftest's TAP 13 — "#  RUN", "#  OK",
// "#  FAIL", "ok N name # SKIP reason", the "# PASSED:"/"# FAILED:" and "# Totals:" lines — and
// yields the exit code 0 or 1.
//
// Where the C harness forks a child per test, kemu boots a fresh machine per test (the fixture
// names its MachineSpec) and hands it to the test through `_metadata.machine`; the machine's
// shutdown check (leaks, unexpected splats) fails the test like a crash would. Assertions find
// the running test through AsyncLocalStorage, so ASSERT_EQ(a, b) reads as in C, also from helpers.
//
//   export const prog = kselftest("hmm-tests", { machine: DEFAULT_MACHINE });
//   interface Self { fd: number }
//   interface Variant { device_number: number }
//   const hmm = FIXTURE<Self, Variant>(prog, "hmm", {
//     setup: async (self, variant, _metadata) => { self.fd = ...; ASSERT_GE(self.fd, 0); },
//     teardown: async (self) => { ... },
//   });
//   FIXTURE_VARIANT_ADD(hmm, "hmm_device_private", { device_number: 0 });
//   TEST_F(hmm, "open_close", async (self, variant, _metadata) => {});
//   TEST(prog, "global_thing", async (_metadata) => { EXPECT_EQ(0, 0); });

import { AsyncLocalStorage } from "node:async_hooks";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { boot } from "../../../kernel/boot.ts";
import type { Machine } from "../../../kernel/machine.ts";
import type { MachineSpec } from "../../../kernel/machine_spec.ts";

// ---- kselftest.h exit codes --------------------------------------------------------------------

export const KSFT_PASS = 0;
export const KSFT_FAIL = 1;
export const KSFT_XFAIL = 2;
export const KSFT_XPASS = 3;
export const KSFT_SKIP = 4;

/** TEST_TIMEOUT_DEFAULT, in host seconds. */
export const TEST_TIMEOUT_DEFAULT = 30;

type Awaitable<T> = T | Promise<T>;

// ---- metadata and the running test -------------------------------------------------------------

/** struct __test_metadata: what a running test knows about itself. */
export class TestMetadata {
  exitCode = KSFT_PASS;
  /** The SKIP reason (results->reason). */
  reason = "";
  /** Set once FIXTURE_SETUP returned: only then does FIXTURE_TEARDOWN run. */
  setupCompleted = false;
  /** The test ended through an ASSERT_* failure. */
  aborted = false;

  constructor(
    /** The test's own name (t->name), used in assertion lines. */
    readonly name: string,
    /** fixture[.variant].test */
    readonly fullName: string,
    /** The machine this test runs on: boot() of the fixture's spec. */
    readonly machine: Machine,
    /** Where the harness writes (stdout and stderr, in order). */
    readonly write: (line: string) => void,
  ) {}
}

const running = new AsyncLocalStorage<TestMetadata>();

function current(what: string): TestMetadata {
  const md = running.getStore();
  if (!md) throw new Error(`${what} used outside a running kselftest`);
  return md;
}

/** Ends the test like __bail()'s abort(): thrown by ASSERT_* failures. */
class TestAbort extends Error {
  constructor() {
    super("kselftest assertion abort");
    this.name = "TestAbort";
  }
}

/** Ends the current function like SKIP()'s `return`. */
class TestSkip extends Error {
  constructor() {
    super("kselftest skip");
    this.name = "TestSkip";
  }
}

// ---- source locations and expression text (__FILE__, __LINE__, #expr) -------------------------

interface CallSite {
  file: string;
  line: number;
  column: number;
}

const HERE = fileURLToPath(import.meta.url);

/** The first stack frame outside this file: where the macro was written. */
function callSite(): CallSite | null {
  for (const frame of (new Error().stack ?? "").split("\n").slice(1)) {
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(frame.trim());
    if (!m) continue;
    const file = m[1]!.startsWith("file://") ? fileURLToPath(m[1]!) : m[1]!;
    if (file === HERE || file.includes("node:") || file.includes("node_modules")) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return null;
}

const sources = new Map<string, string[] | null>();

function sourceLines(file: string): string[] | null {
  if (!sources.has(file)) {
    try {
      sources.set(file, readFileSync(file, "utf8").split("\n"));
    } catch {
      sources.set(file, null);
    }
  }
  return sources.get(file)!;
}

/** Splits the argument list that starts after `(` at (line, col) at its top-level commas. */
function splitArgs(lines: string[], line: number, col: number): string[] | null {
  const args: string[] = [];
  let depth = 0;
  let quote = "";
  let cur = "";
  for (let l = line; l < lines.length && l < line + 20; l++) {
    const text = lines[l]!;
    for (let i = l === line ? col : 0; i < text.length; i++) {
      const ch = text[i]!;
      if (quote) {
        if (ch === "\\") cur += ch + (text[++i] ?? "");
        else {
          if (ch === quote) quote = "";
          cur += ch;
        }
        continue;
      }
      if (ch === '"' || ch === "'" || ch === "`") quote = ch;
      else if ("([{".includes(ch)) depth++;
      else if (")]}".includes(ch)) {
        if (depth === 0) return [...args, cur].map((a) => a.replace(/\s+/g, " ").trim()).filter((a) => a);
        depth--;
      } else if (ch === "," && depth === 0) {
        args.push(cur);
        cur = "";
        continue;
      }
      cur += ch;
    }
    cur += " ";
  }
  return null;
}

/** The source text of the macro's arguments (the C macro's #expected, #seen). */
function argumentText(site: CallSite | null, macro: string): string[] | null {
  if (!site) return null;
  const lines = sourceLines(site.file);
  const text = lines?.[site.line - 1];
  if (!lines || text === undefined) return null;
  let best = -1;
  for (let i = text.indexOf(`${macro}(`); i >= 0; i = text.indexOf(`${macro}(`, i + 1)) {
    if (best < 0 || Math.abs(i + 1 - site.column) < Math.abs(best + 1 - site.column)) best = i;
  }
  return best < 0 ? null : splitArgs(lines, site.line - 1, best + macro.length + 1);
}

/** __TH_LOG(): "# <file>:<line>:<test>:<message>". */
function thLog(md: TestMetadata, site: CallSite | null, msg: string): void {
  const where = site ? `${basename(site.file)}:${site.line}` : "?:0";
  md.write(`# ${where}:${md.name}:${msg}`);
}

/** TH_LOG(fmt, ...): a diagnostic line attributed to the running test. */
export function TH_LOG(msg: string): void {
  thLog(current("TH_LOG"), callSite(), msg);
}

// ---- ASSERT_* / EXPECT_* -----------------------------------------------------------------------

/** On failure: a TH_LOG message or a function to run (the macros' optional trailing handler). */
export type FailureHandler = string | (() => void);

function value(v: unknown): string {
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  return inspect(v, { depth: 1, breakLength: Infinity });
}

/** The common tail of every macro: log, mark failed, run the handler, abort if ASSERT. */
function failed(md: TestMetadata, site: CallSite | null, msg: string, handler: FailureHandler | undefined, isAssert: boolean): void {
  thLog(md, site, msg);
  md.exitCode = KSFT_FAIL;
  if (typeof handler === "string") thLog(md, site, handler);
  else handler?.();
  if (isAssert) {
    md.aborted = true;
    throw new TestAbort();
  }
}

/** __EXPECT(): "Expected <a> (<va>) <op> <b> (<vb>)". */
function expect2(macro: string, isAssert: boolean, op: string, ok: boolean, exp: unknown, seen: unknown,
  handler: FailureHandler | undefined, fixedExp?: string): boolean {
  if (ok) return true;
  const md = current(macro);
  const site = callSite();
  const args = argumentText(site, macro);
  const expText = fixedExp ?? args?.[0] ?? value(exp);
  const seenText = (fixedExp ? args?.[0] : args?.[1]) ?? value(seen);
  failed(md, site, `Expected ${expText} (${value(exp)}) ${op} ${seenText} (${value(seen)})`, handler, isAssert);
  return false;
}

/** __EXPECT_STR(): "Expected '<a>' <op> '<b>'." */
function expectStr(macro: string, isAssert: boolean, op: string, ok: boolean, exp: string, seen: string, handler?: FailureHandler): boolean {
  if (ok) return true;
  const md = current(macro);
  const site = callSite();
  failed(md, site, `Expected '${exp}' ${op} '${seen}'.`, handler, isAssert);
  return false;
}

type Num = number | bigint;

function family(p: "ASSERT" | "EXPECT") {
  const a = p === "ASSERT";
  return {
    EQ: <T>(expected: T, seen: T, h?: FailureHandler) => expect2(`${p}_EQ`, a, "==", expected === seen, expected, seen, h),
    NE: <T>(expected: T, seen: T, h?: FailureHandler) => expect2(`${p}_NE`, a, "!=", expected !== seen, expected, seen, h),
    LT: (expected: Num, seen: Num, h?: FailureHandler) => expect2(`${p}_LT`, a, "<", expected < seen, expected, seen, h),
    LE: (expected: Num, seen: Num, h?: FailureHandler) => expect2(`${p}_LE`, a, "<=", expected <= seen, expected, seen, h),
    GT: (expected: Num, seen: Num, h?: FailureHandler) => expect2(`${p}_GT`, a, ">", expected > seen, expected, seen, h),
    GE: (expected: Num, seen: Num, h?: FailureHandler) => expect2(`${p}_GE`, a, ">=", expected >= seen, expected, seen, h),
    NULL: (seen: unknown, h?: FailureHandler) => expect2(`${p}_NULL`, a, "==", seen === null || seen === undefined, null, seen, h, "NULL"),
    TRUE: (seen: unknown, h?: FailureHandler) => expect2(`${p}_TRUE`, a, "!=", !!seen, 0, seen, h, "0"),
    FALSE: (seen: unknown, h?: FailureHandler) => expect2(`${p}_FALSE`, a, "==", !seen, 0, seen, h, "0"),
    STREQ: (expected: string, seen: string, h?: FailureHandler) => expectStr(`${p}_STREQ`, a, "==", expected === seen, expected, seen, h),
    STRNE: (expected: string, seen: string, h?: FailureHandler) => expectStr(`${p}_STRNE`, a, "!=", expected !== seen, expected, seen, h),
  };
}

const A = family("ASSERT");
const E = family("EXPECT");

export const ASSERT_EQ = A.EQ;
export const ASSERT_NE = A.NE;
export const ASSERT_LT = A.LT;
export const ASSERT_LE = A.LE;
export const ASSERT_GT = A.GT;
export const ASSERT_GE = A.GE;
export const ASSERT_NULL = A.NULL;
export const ASSERT_TRUE = A.TRUE;
export const ASSERT_FALSE = A.FALSE;
export const ASSERT_STREQ = A.STREQ;
export const ASSERT_STRNE = A.STRNE;

export const EXPECT_EQ = E.EQ;
export const EXPECT_NE = E.NE;
export const EXPECT_LT = E.LT;
export const EXPECT_LE = E.LE;
export const EXPECT_GT = E.GT;
export const EXPECT_GE = E.GE;
export const EXPECT_NULL = E.NULL;
export const EXPECT_TRUE = E.TRUE;
export const EXPECT_FALSE = E.FALSE;
export const EXPECT_STREQ = E.STREQ;
export const EXPECT_STRNE = E.STRNE;

/** SKIP(return, reason): records the reason, logs it and ends the current function. */
export function SKIP(reason: string): never {
  const md = current("SKIP");
  md.reason = reason;
  md.write(`#      SKIP      ${reason}`);
  md.exitCode = KSFT_SKIP;
  throw new TestSkip();
}

// ---- declarations: programs, fixtures, variants, tests ------------------------------------------

export type SetupFn<Self, V> = (self: Self, variant: V, _metadata: TestMetadata) => Awaitable<void>;
export type TestFn<Self, V> = (self: Self, variant: V, _metadata: TestMetadata) => Awaitable<void>;

export interface TestOptions {
  /** TEST_*_SIGNAL: passes only if the body dies by this signal ("SIGSEGV", "SIGBUS", ...). */
  signal?: string;
  /** TEST_F_TIMEOUT, host seconds. */
  timeout?: number;
}

interface TestDef<Self, V> {
  name: string;
  fn: TestFn<Self, V>;
  opts: TestOptions;
}

export interface FixtureOptions<Self, V> {
  /** Builds the fixture data `self` for each test (default: an empty object). */
  self?: () => Self;
  setup?: SetupFn<Self, V>;
  teardown?: SetupFn<Self, V>;
  /** The machine each test of this fixture boots; may depend on the variant. */
  machine?: MachineSpec | ((variant: V) => MachineSpec);
}

/** FIXTURE(name): its data type is `Self`, its variant type (FIXTURE_VARIANT) is `V`. */
export class Fixture<Self, V> {
  readonly variants: Array<{ name: string; data: V }> = [];
  readonly tests: TestDef<Self, V>[] = [];
  /** XFAIL_ADD entries as "variant.test". */
  readonly xfails = new Set<string>();

  constructor(
    readonly program: KselftestProgram,
    readonly name: string,
    readonly opts: FixtureOptions<Self, V>,
  ) {}
}

type AnyFixture = Fixture<unknown, unknown>;

/** One runnable test: a fixture, one of its variants ("" when it has none) and a test. */
export interface TestInstance {
  fixture: AnyFixture;
  variant: { name: string; data: unknown };
  test: TestDef<unknown, unknown>;
  fullName: string;
}

export interface ProgramOptions {
  /** The machine tests boot unless their fixture names one (default: boot()'s default machine). */
  machine?: MachineSpec;
  /** The runner's per-program timeout in host seconds (a "settings" file's timeout=); 0 = none. */
  timeout?: number;
}

export interface RunIO {
  write: (line: string) => void;
  /** Replaces the seed of every machine the tests boot. */
  seed?: number;
  /** The runner killed the program (its timeout): stop waiting and run nothing more. */
  signal?: AbortSignal;
}

export interface SelftestResult {
  fullName: string;
  /** KSFT_* after XFAIL_ADD is applied. */
  exitCode: number;
  /** __test_passed(): not a failure (skips, xfails and xpasses count as passed). */
  passed: boolean;
  reason: string;
  /** Everything the test printed, "#  RUN" through its result line. */
  output: string[];
}

/** A selftest program: what one kselftest binary built with TEST_HARNESS_MAIN is. */
export class KselftestProgram {
  readonly fixtures: AnyFixture[] = [];
  /** The selftests directory ("mm", "kernel"); the registry fills it from the file's path. */
  dir = "";
  private global: AnyFixture | null = null;

  constructor(
    readonly name: string,
    readonly opts: ProgramOptions = {},
  ) {}

  /** Every test in declaration order: fixture, then variant, then test. */
  instances(): TestInstance[] {
    const out: TestInstance[] = [];
    for (const f of this.fixtures) {
      for (const v of f.variants.length ? f.variants : [{ name: "", data: undefined }]) {
        for (const t of f.tests) out.push({ fixture: f, variant: v, test: t, fullName: `${f.name}${v.name ? `.${v.name}` : ""}.${t.name}` });
      }
    }
    return out;
  }

  /** TEST_HARNESS_MAIN's main(): parses harness options, runs the enabled tests, returns the exit code. */
  async main(argv: readonly string[], io: RunIO): Promise<number> {
    const opts = parseArgs(argv);
    if (typeof opts === "number") {
      if (opts === KSFT_SKIP && argv.includes("-l")) this.list(io.write);
      else usage(this.name, io.write);
      return opts;
    }
    const enabled = this.instances().filter((i) => testEnabled(opts, i));
    const cases = this.fixtures.reduce((n, f) => n + Math.max(1, f.variants.length), 0);
    io.write("TAP version 13");
    io.write(`1..${enabled.length}`);
    io.write(`# Starting ${enabled.length} tests from ${cases} test cases.`);
    const cnt = { pass: 0, fail: 0, xfail: 0, xpass: 0, skip: 0, error: 0 };
    let passCount = 0;
    for (const [i, inst] of enabled.entries()) {
      if (io.signal?.aborted) return KSFT_FAIL;
      const r = await this.runTest(inst, { ...io, number: i + 1 });
      if (r.passed) passCount++;
      if (r.exitCode === KSFT_PASS) cnt.pass++;
      else if (r.exitCode === KSFT_XFAIL) cnt.xfail++;
      else if (r.exitCode === KSFT_XPASS) cnt.xpass++;
      else if (r.exitCode === KSFT_SKIP) cnt.skip++;
      else cnt.fail++;
    }
    const ok = passCount === enabled.length;
    io.write(`# ${ok ? "PASSED" : "FAILED"}: ${passCount} / ${enabled.length} tests passed.`);
    io.write(`# Totals: pass:${cnt.pass} fail:${cnt.fail} xfail:${cnt.xfail} xpass:${cnt.xpass} skip:${cnt.skip} error:${cnt.error}`);
    return ok ? KSFT_PASS : KSFT_FAIL;
  }

  /** __run_test(): one test on its own machine, printed from "#  RUN" to its result line. */
  async runTest(inst: TestInstance, io: RunIO & { number?: number }): Promise<SelftestResult> {
    const output: string[] = [];
    const write = (l: string) => {
      output.push(l);
      io.write(l);
    };
    write(`#  RUN           ${inst.fullName} ...`);
    const ended = await runIsolated(this, inst, write, io.seed, io.signal);
    const passed = testPassed(ended.exitCode);
    write(`#          ${passed ? "  OK" : "FAIL"}  ${inst.fullName}`);
    let code = ended.exitCode;
    if (inst.fixture.xfails.has(`${inst.variant.name}.${inst.test.name}`)) code = passed ? KSFT_XPASS : KSFT_XFAIL;
    const diagnostic = ended.reason || (code === KSFT_PASS || code === KSFT_FAIL ? null : "unknown");
    write(resultLine(code, io.number ?? 1, inst.fullName, diagnostic));
    return { fullName: inst.fullName, exitCode: code, passed: testPassed(code), reason: ended.reason, output };
  }

  /** -l: the fixture/variant/test table test_harness_list_tests() prints. */
  private list(write: (l: string) => void): void {
    const col = (a: string, b: string, c: string) => `${a.padEnd(20)} ${b.padEnd(25)} ${c}`.trimEnd();
    for (const [fi, f] of this.fixtures.entries()) {
      write(fi === 0 ? col("# FIXTURE", "VARIANT", "TEST") : "-".repeat(80));
      const rows = Math.max(f.variants.length, f.tests.length);
      for (let r = 0; r < rows; r++) write(col(r === 0 ? f.name : "", f.variants[r]?.name ?? "", f.tests[r]?.name ?? ""));
    }
  }

  /** The implicit "global" fixture of plain TEST()s, registered with the first of them. */
  globalFixture(): AnyFixture {
    if (!this.global) {
      this.global = new Fixture(this, "global", {});
      this.fixtures.push(this.global);
    }
    return this.global;
  }
}

/** __test_passed(): anything but a failure (an XPASS too) counts as passed. */
function testPassed(code: number): boolean {
  return code !== KSFT_FAIL && code <= KSFT_SKIP;
}

/** ksft_test_result_code(): the TAP result line with its directive. */
function resultLine(code: number, n: number, name: string, diagnostic: string | null): string {
  const directive = code === KSFT_XFAIL ? " # XFAIL " : code === KSFT_XPASS ? " # XPASS " : code === KSFT_SKIP ? " # SKIP " : "";
  const tap = code === KSFT_FAIL || code > KSFT_SKIP ? "not ok" : "ok";
  if (diagnostic === null) return `${tap} ${n} ${name}`;
  return `${tap} ${n} ${name}${directive || " #  "}${diagnostic}`;
}

// ---- running one test ------------------------------------------------------------------------

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Did the body die by `sig`? A signal error names it (name, `signal` field, or message). */
function diedBySignal(e: unknown, sig: string): boolean {
  if (!(e instanceof Error)) return false;
  return (e as Error & { signal?: unknown }).signal === sig || e.name === sig || e.message.startsWith(sig);
}

function specFor(program: KselftestProgram, inst: TestInstance, seed: number | undefined): MachineSpec | undefined {
  const m = inst.fixture.opts.machine;
  const spec = typeof m === "function" ? m(inst.variant.data) : (m ?? program.opts.machine);
  if (seed === undefined) return spec;
  return { ...(spec ?? {}), seed };
}

/** Runs `fn` with a host-time limit; "timeout" if it does not finish in time or the program is killed. */
async function withTimeout(fn: () => Promise<void>, seconds: number, signal?: AbortSignal): Promise<"done" | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => {};
  const limit = new Promise<"timeout">((res) => {
    timer = setTimeout(() => res("timeout"), seconds * 1000);
    onAbort = () => res("timeout");
    signal?.addEventListener("abort", onAbort);
  });
  try {
    return await Promise.race([fn().then(() => "done" as const), limit]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** The child of __run_test(): setup, body, teardown on a fresh machine, then its shutdown check. */
async function runIsolated(program: KselftestProgram, inst: TestInstance, write: (l: string) => void,
  seed?: number, signal?: AbortSignal): Promise<{ exitCode: number; reason: string }> {
  let machine: Machine;
  try {
    machine = await boot(specFor(program, inst, seed));
  } catch (e) {
    write(`# ${inst.test.name}: machine failed to boot: ${describeError(e)}`);
    return { exitCode: KSFT_FAIL, reason: "" };
  }
  const md = new TestMetadata(inst.test.name, inst.fullName, machine, write);
  const seconds = inst.test.opts.timeout ?? TEST_TIMEOUT_DEFAULT;
  const outcome = await withTimeout(() => running.run(md, () => runBody(inst, md)), seconds, signal);
  if (outcome === "timeout") {
    // The body may still be running on this machine: it is abandoned, not shut down.
    write(`# ${md.name}: Test terminated by timeout`);
    md.exitCode = KSFT_FAIL;
    return md;
  }
  const problems = await machine.shutdown({ report_only: true }).catch((e: unknown) => [`shutdown faulted: ${describeError(e)}`]);
  for (const p of problems) write(`# ${md.name}: machine shutdown: ${p}`);
  if (problems.length) md.exitCode = KSFT_FAIL;
  return md;
}

/** Setup, the body and teardown, with the harness's rules for aborts, skips and signals. */
async function runBody(inst: TestInstance, md: TestMetadata): Promise<void> {
  const { fixture, variant, test } = inst;
  const self = fixture.opts.self ? fixture.opts.self() : ({} as unknown);
  let thrown: unknown = null;
  try {
    await fixture.opts.setup?.(self, variant.data, md);
    // Let setup failure (or a skip) terminate early, without teardown.
    if (md.exitCode !== KSFT_PASS) return;
    md.setupCompleted = true;
    await test.fn(self, variant.data, md);
  } catch (e) {
    if (!(e instanceof TestAbort) && !(e instanceof TestSkip)) thrown = e;
  }
  if (md.setupCompleted && fixture.opts.teardown) {
    try {
      await fixture.opts.teardown(self, variant.data, md);
    } catch (e) {
      if (!(e instanceof TestAbort) && !(e instanceof TestSkip)) thrown ??= e;
    }
  }
  verdict(test.opts.signal, md, thrown);
}

/** __wait_for_test(): how the "child" ended decides the verdict and the parent's message. */
function verdict(signal: string | undefined, md: TestMetadata, thrown: unknown): void {
  if (signal && thrown !== null && diedBySignal(thrown, signal)) return;
  if (md.aborted) md.write(`# ${md.name}: Test terminated by assertion`);
  else if (thrown !== null) md.write(`# ${md.name}: Test terminated unexpectedly: ${describeError(thrown)}`);
  else if (signal) md.write(`# ${md.name}: Test exited normally instead of by signal (code: ${md.exitCode})`);
  if (signal || thrown !== null) md.exitCode = KSFT_FAIL;
}

// ---- command line (test_harness_argv_check, test_enabled) -------------------------------------

type Filter = { flag: "f" | "F" | "v" | "V" | "t" | "T" | "r"; name: string };

/** The filters, or an exit code: KSFT_SKIP for -l and -h, KSFT_FAIL for a bad option. */
function parseArgs(argv: readonly string[]): Filter[] | number {
  const out: Filter[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^-([hlfFvVtTr])(.*)$/.exec(a);
    if (!m) return KSFT_FAIL;
    const flag = m[1]!;
    if (flag === "l" || flag === "h") return KSFT_SKIP;
    const name = m[2] || argv[++i];
    if (name === undefined) return KSFT_FAIL;
    out.push({ flag: flag as Filter["flag"], name });
  }
  return out;
}

function usage(prog: string, write: (l: string) => void): void {
  for (const l of [
    `Usage: ${prog} [-h|-l] [-t|-T|-v|-V|-f|-F|-r name]`,
    "\t-h       print help",
    "\t-l       list all tests",
    "",
    "\t-t name  include test",
    "\t-T name  exclude test",
    "\t-v name  include variant",
    "\t-V name  exclude variant",
    "\t-f name  include fixture",
    "\t-F name  exclude fixture",
    "\t-r name  run specified test",
    "",
    "Test filter options can be specified multiple times. The filtering stops",
    "at the first match. For example to include all tests from variant 'bla'",
    "but not test 'foo' specify '-T foo -v bla'.",
  ]) write(l);
}

/** test_enabled(): the first matching filter decides; with no positive filter, all run. */
function testEnabled(filters: readonly Filter[], inst: TestInstance): boolean {
  let hasPositive = false;
  for (const f of filters) {
    const positive = f.flag === f.flag.toLowerCase();
    hasPositive ||= positive;
    const subject = { f: inst.fixture.name, v: inst.variant.name, t: inst.test.name, r: inst.fullName }[f.flag.toLowerCase() as "f" | "v" | "t" | "r"];
    if (subject === f.name) return positive;
  }
  return !hasPositive;
}

// ---- the declaration macros ------------------------------------------------------------------

/** TEST_HARNESS_MAIN: declares a selftest program; export it from the file. */
export function kselftest(name: string, opts: ProgramOptions = {}): KselftestProgram {
  return new KselftestProgram(name, opts);
}

/** FIXTURE(name) with FIXTURE_SETUP / FIXTURE_TEARDOWN given inline. */
export function FIXTURE<Self extends object = Record<string, never>, V = undefined>(
  program: KselftestProgram, name: string, opts: FixtureOptions<Self, V> = {}): Fixture<Self, V> {
  const f = new Fixture<Self, V>(program, name, { ...opts });
  program.fixtures.push(f as unknown as AnyFixture);
  return f;
}

export function FIXTURE_SETUP<Self, V>(f: Fixture<Self, V>, fn: SetupFn<Self, V>): void {
  f.opts.setup = fn;
}

export function FIXTURE_TEARDOWN<Self, V>(f: Fixture<Self, V>, fn: SetupFn<Self, V>): void {
  f.opts.teardown = fn;
}

/** FIXTURE_VARIANT_ADD(f, name) { .field = ... }: every TEST_F of `f` also runs with `data`. */
export function FIXTURE_VARIANT_ADD<Self, V>(f: Fixture<Self, V>, name: string, data: V): void {
  f.variants.push({ name, data });
}

/** XFAIL_ADD(f, variant, test): that test is expected to fail in that variant. */
export function XFAIL_ADD<Self, V>(f: Fixture<Self, V>, variant: string, test: string): void {
  f.xfails.add(`${variant}.${test}`);
}

export function TEST_F<Self, V>(f: Fixture<Self, V>, name: string, fn: TestFn<Self, V>, opts: TestOptions = {}): void {
  f.tests.push({ name, fn, opts });
}

export function TEST_F_SIGNAL<Self, V>(f: Fixture<Self, V>, name: string, signal: string, fn: TestFn<Self, V>): void {
  TEST_F(f, name, fn, { signal });
}

export function TEST_F_TIMEOUT<Self, V>(f: Fixture<Self, V>, name: string, seconds: number, fn: TestFn<Self, V>): void {
  TEST_F(f, name, fn, { timeout: seconds });
}

/** TEST(name): a test of the implicit "global" fixture; the body gets only `_metadata`. */
export function TEST(program: KselftestProgram, name: string, fn: (_metadata: TestMetadata) => Awaitable<void>, opts: TestOptions = {}): void {
  program.globalFixture().tests.push({ name, fn: (_self, _variant, md) => fn(md), opts });
}

export function TEST_SIGNAL(program: KselftestProgram, name: string, signal: string, fn: (_metadata: TestMetadata) => Awaitable<void>): void {
  TEST(program, name, fn, { signal });
}
