// Mirrors lib/kunit/test.c and include/kunit/test.h (Linux 6.8): suites, cases, parameterised
// cases, expectations that record and continue, assertions that abort the case, skips, and
// deferred actions released at case end. Each case runs in a kernel thread of a freshly booted
// machine, and the machine's shutdown check (leaks, splats) is part of the verdict.

import { inspect } from "node:util";
import type { Kernel, SplatKind } from "../../kernel/kernel.ts";
import type { Machine } from "../../kernel/machine.ts";
import type { MachineSpec } from "../../kernel/machine_spec.ts";

export type kunit_status = "success" | "failure" | "skipped";
export type kunit_speed = "normal" | "slow" | "very_slow";

export interface kunit_attributes {
  speed?: kunit_speed;
}

export interface kunit_param {
  value: unknown;
  desc?: string;
}

export interface kunit_case {
  name: string;
  run_case: (test: kunit) => Promise<void> | void;
  /** KUNIT_CASE_PARAM: the parameters the case runs over, each reported as a sub-test. */
  generate_params?: () => kunit_param[];
  attr?: kunit_attributes;
}

export interface kunit_suite {
  name: string;
  test_cases: kunit_case[];
  suite_init?: (suite: kunit_suite) => Promise<number> | number;
  suite_exit?: (suite: kunit_suite) => Promise<void> | void;
  init?: (test: kunit) => Promise<number> | number;
  exit?: (test: kunit) => Promise<void> | void;
  attr?: kunit_attributes & { module?: string };
  /** The machine each case boots (default: a minimal machine, no devices). */
  machine?: MachineSpec;
}

/** Thrown by KUNIT_ASSERT_* and kunit_skip() to end the case, like the kthread exit. */
export class KunitAbort extends Error {
  constructor() {
    super("kunit case aborted");
    this.name = "KunitAbort";
  }
}

type Action = () => Promise<void> | void;

export class kunit {
  /** The user data slot, usually set by the suite's init. */
  priv: unknown = null;
  param_value: unknown = undefined;
  param_index = 0;
  status: kunit_status = "success";
  status_comment = "";
  /** Diagnostic lines printed before the case's result. */
  readonly log: string[] = [];
  private actions: Action[] = [];
  /** Splat kinds this case provokes on purpose. */
  readonly expected_splats = new Set<SplatKind>();

  constructor(
    readonly name: string,
    readonly machine: Machine,
  ) {}

  get k(): Kernel {
    return this.machine.k;
  }

  fail(msg: string): void {
    this.status = "failure";
    for (const l of msg.split("\n")) this.log.push(l);
  }

  add_action(fn: Action): void {
    this.actions.push(fn);
  }

  /** Runs deferred actions in reverse registration order (kunit_cleanup). */
  async cleanup(): Promise<void> {
    while (this.actions.length) await this.actions.pop()!();
  }
}

/** KUNIT_CASE(fn): the case takes the function's name. */
export function KUNIT_CASE(fn: (test: kunit) => Promise<void> | void, attr?: kunit_attributes): kunit_case {
  return { name: fn.name, run_case: fn, attr };
}

export function KUNIT_CASE_SLOW(fn: (test: kunit) => Promise<void> | void): kunit_case {
  return KUNIT_CASE(fn, { speed: "slow" });
}

export function KUNIT_CASE_PARAM(fn: (test: kunit) => Promise<void> | void, gen: () => kunit_param[]): kunit_case {
  return { name: fn.name, run_case: fn, generate_params: gen };
}

/** KUNIT_ARRAY_PARAM: parameters from an array, described by `get_desc` or "param-N". */
export function KUNIT_ARRAY_PARAM<T>(array: readonly T[], get_desc?: (p: T) => string): () => kunit_param[] {
  return () => array.map((value, i) => ({ value, desc: get_desc ? get_desc(value) : `param-${i}` }));
}

// ---- expectations and assertions (include/kunit/test.h, lib/kunit/assert.c) ---------------

/** Source location of the failing expectation, as "test/kunit/x.ts:88". */
function where(): string {
  const lines = new Error().stack?.split("\n") ?? [];
  const frame = lines.find((l, i) => i > 0 && !l.includes("lib/kunit/test.ts")) ?? "";
  const m = /((?:test|lib|kernel|mm|drivers|iommu|arch|hw|tools)\/[^():\s]+):(\d+):\d+/.exec(frame);
  return m ? `${m[1]}:${m[2]}` : "?";
}

function show(v: unknown): string {
  if (typeof v === "number" && Number.isInteger(v)) return `${v} (0x${(v < 0 ? v + 2 ** 32 : v).toString(16)})`;
  return inspect(v, { depth: 2, breakLength: Infinity });
}

function report(test: kunit, kind: "EXPECTATION" | "ASSERTION", text: string): void {
  test.fail(`# ${test.name}: ${kind} FAILED at ${where()}\n${text}`);
  if (kind === "ASSERTION") throw new KunitAbort();
}

type Kind = "EXPECTATION" | "ASSERTION";

function binary(test: kunit, kind: Kind, ok: boolean, op: string, l: unknown, r: unknown, ln: string, rn: string, msg?: string): boolean {
  if (ok) return true;
  report(test, kind, `Expected ${ln} ${op} ${rn}, but\n    ${ln} == ${show(l)}\n    ${rn} == ${show(r)}${msg ? `\n${msg}` : ""}`);
  return false;
}

function unary(test: kunit, kind: Kind, ok: boolean, text: string, msg?: string): boolean {
  if (ok) return true;
  report(test, kind, `${text}${msg ? `\n${msg}` : ""}`);
  return false;
}

function bytes_equal(a: ArrayLike<number>, b: ArrayLike<number>, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function family(kind: Kind) {
  return {
    TRUE: (t: kunit, c: unknown, msg?: string) => unary(t, kind, !!c, `Expected condition to be true, but is false`, msg),
    FALSE: (t: kunit, c: unknown, msg?: string) => unary(t, kind, !c, `Expected condition to be false, but is true`, msg),
    EQ: <V>(t: kunit, l: V, r: V, msg?: string) => binary(t, kind, Object.is(l, r) || l === r, "==", l, r, "left", "right", msg),
    NE: <V>(t: kunit, l: V, r: V, msg?: string) => binary(t, kind, l !== r, "!=", l, r, "left", "right", msg),
    LT: (t: kunit, l: number, r: number, msg?: string) => binary(t, kind, l < r, "<", l, r, "left", "right", msg),
    LE: (t: kunit, l: number, r: number, msg?: string) => binary(t, kind, l <= r, "<=", l, r, "left", "right", msg),
    GT: (t: kunit, l: number, r: number, msg?: string) => binary(t, kind, l > r, ">", l, r, "left", "right", msg),
    GE: (t: kunit, l: number, r: number, msg?: string) => binary(t, kind, l >= r, ">=", l, r, "left", "right", msg),
    PTR_EQ: (t: kunit, l: unknown, r: unknown, msg?: string) => binary(t, kind, l === r, "==", l, r, "left", "right", msg),
    PTR_NE: (t: kunit, l: unknown, r: unknown, msg?: string) => binary(t, kind, l !== r, "!=", l, r, "left", "right", msg),
    NULL: (t: kunit, p: unknown, msg?: string) => unary(t, kind, p === null || p === undefined, `Expected value to be null, but is ${show(p)}`, msg),
    NOT_NULL: (t: kunit, p: unknown, msg?: string) => unary(t, kind, p !== null && p !== undefined, `Expected value is not null, but is`, msg),
    NOT_ERR_OR_NULL: (t: kunit, p: unknown, msg?: string) =>
      unary(t, kind, p !== null && p !== undefined && !(typeof p === "number" && p < 0 && p >= -4095), `Expected value is not error, but is: ${show(p)}`, msg),
    STREQ: (t: kunit, l: string, r: string, msg?: string) => binary(t, kind, l === r, "==", l, r, "left", "right", msg),
    STRNEQ: (t: kunit, l: string, r: string, msg?: string) => binary(t, kind, l !== r, "!=", l, r, "left", "right", msg),
    MEMEQ: (t: kunit, l: ArrayLike<number>, r: ArrayLike<number>, n: number, msg?: string) =>
      binary(t, kind, bytes_equal(l, r, n), "==", Array.from(l).slice(0, 16), Array.from(r).slice(0, 16), "left", "right", msg),
    MEMNEQ: (t: kunit, l: ArrayLike<number>, r: ArrayLike<number>, n: number, msg?: string) =>
      binary(t, kind, !bytes_equal(l, r, n), "!=", Array.from(l).slice(0, 16), Array.from(r).slice(0, 16), "left", "right", msg),
  };
}

const E = family("EXPECTATION");
const A = family("ASSERTION");

export const KUNIT_EXPECT_TRUE = E.TRUE;
export const KUNIT_EXPECT_FALSE = E.FALSE;
export const KUNIT_EXPECT_EQ = E.EQ;
export const KUNIT_EXPECT_NE = E.NE;
export const KUNIT_EXPECT_LT = E.LT;
export const KUNIT_EXPECT_LE = E.LE;
export const KUNIT_EXPECT_GT = E.GT;
export const KUNIT_EXPECT_GE = E.GE;
export const KUNIT_EXPECT_PTR_EQ = E.PTR_EQ;
export const KUNIT_EXPECT_PTR_NE = E.PTR_NE;
export const KUNIT_EXPECT_NULL = E.NULL;
export const KUNIT_EXPECT_NOT_NULL = E.NOT_NULL;
export const KUNIT_EXPECT_NOT_ERR_OR_NULL = E.NOT_ERR_OR_NULL;
export const KUNIT_EXPECT_STREQ = E.STREQ;
export const KUNIT_EXPECT_STRNEQ = E.STRNEQ;
export const KUNIT_EXPECT_MEMEQ = E.MEMEQ;
export const KUNIT_EXPECT_MEMNEQ = E.MEMNEQ;

export const KUNIT_ASSERT_TRUE = A.TRUE;
export const KUNIT_ASSERT_FALSE = A.FALSE;
export const KUNIT_ASSERT_EQ = A.EQ;
export const KUNIT_ASSERT_NE = A.NE;
export const KUNIT_ASSERT_LT = A.LT;
export const KUNIT_ASSERT_LE = A.LE;
export const KUNIT_ASSERT_GT = A.GT;
export const KUNIT_ASSERT_GE = A.GE;
export const KUNIT_ASSERT_PTR_EQ = A.PTR_EQ;
export const KUNIT_ASSERT_PTR_NE = A.PTR_NE;
export const KUNIT_ASSERT_NULL = A.NULL;
export const KUNIT_ASSERT_NOT_NULL = A.NOT_NULL;
export const KUNIT_ASSERT_NOT_ERR_OR_NULL = A.NOT_ERR_OR_NULL;
export const KUNIT_ASSERT_STREQ = A.STREQ;
export const KUNIT_ASSERT_STRNEQ = A.STRNEQ;
export const KUNIT_ASSERT_MEMEQ = A.MEMEQ;
export const KUNIT_ASSERT_MEMNEQ = A.MEMNEQ;

export function KUNIT_FAIL(test: kunit, msg: string): void {
  report(test, "EXPECTATION", msg);
}

export function KUNIT_SUCCEED(_test: kunit): void {}

/** kunit_mark_skipped(): the case is skipped unless it already failed; it goes on running. */
export function kunit_mark_skipped(test: kunit, reason: string): void {
  if (test.status !== "failure") test.status = "skipped";
  test.status_comment = reason;
}

/** kunit_skip(): marks skipped and ends the case. */
export function kunit_skip(test: kunit, reason: string): never {
  kunit_mark_skipped(test, reason);
  throw new KunitAbort();
}

/** kunit_add_action(): `fn` runs at case end, after exit(), in reverse registration order. */
export function kunit_add_action(test: kunit, fn: Action): number {
  test.add_action(fn);
  return 0;
}

/** The case provokes this splat on purpose; the shutdown check then ignores it. */
export function kunit_expect_splat(test: kunit, kind: SplatKind): void {
  test.expected_splats.add(kind);
  test.k.expected_splats.add(kind);
}
