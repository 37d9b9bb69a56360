// Mirrors lib/fault-inject.c (Linux 6.8): struct fault_attr, should_fail() and the boot/debugfs
// interfaces. The FaultInjection service also holds the capabilities other files declare in
// the kernel — failslab (mm/failslab.c), fail_page_alloc (mm/fail_page_alloc.c), fail_usercopy
// (lib/fault-inject-usercopy.c) — plus driver-declared points, and the /proc/<pid>/fail-nth and
// make-it-fail semantics of fs/proc/base.c, because in kemu they are per machine, not global.

import { inject, injectable } from "tsyringe";
import { KERNEL, MACHINE_SPEC } from "../kernel/tokens.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { MachineSpec } from "../kernel/machine_spec.ts";
import type { KernelService } from "../kernel/machine.ts";
import type { task_struct } from "../kernel/sched/core.ts";
import { LOGLEVEL_NOTICE } from "../kernel/printk/printk.ts";
import { EINVAL, ENOENT, ENOMEM, ERANGE } from "../include/uapi/asm-generic/errno.ts";
import {
  __GFP_DIRECT_RECLAIM, __GFP_HIGHMEM, __GFP_NOFAIL, __GFP_NOWARN, type gfp_t,
} from "../include/linux/gfp_types.ts";
import { SLAB_FAILSLAB } from "../include/linux/slab.ts";
import { prandom_u32_below } from "./random32.ts";
import { ___ratelimit, ratelimit_state_init_disabled } from "./ratelimit.ts";
import { dump_stack } from "./dump_stack.ts";

/** should_fail_ex() flag: fail silently (the caller passed __GFP_NOWARN). */
export const FAULT_NOWARN = 1 << 0;

/** struct fault_attr with FAULT_ATTR_INITIALIZER's defaults. Bound to its machine's kernel. */
export class fault_attr {
  /** Percent chance of failing an eligible call; 0 disables the attribute. */
  probability = 0;
  /** Fail only every interval-th eligible call (count % interval == 0). */
  interval = 1;
  /** Failures left; -1 = unlimited. */
  times = 1;
  /** Bytes of `size` to let through before failures start. */
  space = 0;
  /** 0 silent, 1 the message, 2 the message and a stack dump. */
  verbose = 2;
  /** Only tasks with /proc/<pid>/make-it-fail = 1 (in task context) are eligible. */
  task_filter = false;
  /** Eligible calls seen, for `interval`. */
  count = 0;
  /** Rate limit of the verbose message; disabled until its interval is set. */
  readonly ratelimit_state = ratelimit_state_init_disabled();

  constructor(
    /** The debugfs directory name: printed as "name <dname>". */
    readonly dname: string,
    readonly k: Kernel,
  ) {}
}

/**
 * in_task(): not in hard IRQ, not serving a softirq (odd softirq_count; bottom halves merely
 * disabled still count as task context) and not a hardware engine.
 */
function in_task(t: task_struct): boolean {
  return t.hardirq_count === 0 && t.softirq_count % 2 === 0 && t.kind !== "hw";
}

function fail_task(t: task_struct): boolean {
  return in_task(t) && t.make_it_fail;
}

/** fail_dump(): the verbose report of a forced failure. */
function fail_dump(attr: fault_attr): void {
  const k = attr.k;
  if (attr.verbose <= 0 || !___ratelimit(attr.ratelimit_state, "fail_dump", k)) return;
  k.printk(LOGLEVEL_NOTICE, "FAULT_INJECTION: forcing a failure.");
  k.printk(LOGLEVEL_NOTICE,
    `name ${attr.dname}, interval ${attr.interval}, probability ${attr.probability}, space ${attr.space}, times ${attr.times}`);
  if (attr.verbose > 1) dump_stack(k);
}

/**
 * should_fail_ex(): the decision, in the kernel's order — the task's fail-nth countdown first
 * (it bypasses every knob), then probability, task filter, times, space, interval, the random
 * draw (the machine's seeded prandom state, so runs repeat).
 * The caller-address (stacktrace) filter is not modelled: it always accepts.
 */
export function should_fail_ex(attr: fault_attr, size: number, flags: number): boolean {
  const t = attr.k.current;
  if (in_task(t) && t.fail_nth) {
    t.fail_nth--;
    if (t.fail_nth) return false;
    return do_fail(attr, flags);
  }
  if (attr.probability === 0) return false;
  if (attr.task_filter && !fail_task(t)) return false;
  if (attr.times === 0) return false;
  if (attr.space > size) {
    attr.space -= size;
    return false;
  }
  if (attr.interval > 1) {
    attr.count++;
    if (attr.count % attr.interval) return false;
  }
  if (attr.probability <= prandom_u32_below(attr.k.sched.rnd, 100)) return false;
  return do_fail(attr, flags);
}

function do_fail(attr: fault_attr, flags: number): boolean {
  if (!(flags & FAULT_NOWARN)) fail_dump(attr);
  // atomic_dec_not_zero(): a failure forced through fail-nth never drives times below 0.
  if (attr.times !== -1 && attr.times !== 0) attr.times--;
  return true;
}

export function should_fail(attr: fault_attr, size: number): boolean {
  return should_fail_ex(attr, size, 0);
}

/** setup_fault_attr(): "<interval>,<probability>,<space>,<times>" from a boot option. */
export function setup_fault_attr(attr: fault_attr, str: string): boolean {
  const m = /^\s*(\d+),\s*(\d+),\s*(-?\d+),\s*(-?\d+)/.exec(str);
  if (!m) {
    attr.k.pr_warn("FAULT_INJECTION: failed to parse arguments");
    return false;
  }
  attr.interval = Number(m[1]);
  attr.probability = Number(m[2]);
  attr.space = to_int32(Number(m[3]));
  attr.times = to_int32(Number(m[4]));
  return true;
}

// ---- debugfs knobs (fault_create_debugfs_attr and the capabilities' extra files) --------------

interface knob {
  read(): string;
  /** 0, or -errno for text the kernel's parser rejects. */
  write(text: string): number;
}

/** kstrto*ll(…, base 0): decimal, 0x hex or 0 octal, one optional trailing newline. */
function parse_integer(text: string, signed: boolean): number | null {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\n?$/.exec(text);
  if (!m || (m[1] === "-" && !signed)) return null;
  const body = m[2]!;
  const v = /^0[xX]/.test(body) ? parseInt(body.slice(2), 16) : body.length > 1 && body[0] === "0" ? parseInt(body, 8) : Number(body);
  return m[1] === "-" ? -v : v;
}

/** kstrtobool(): decided by the first character (e/y/t/1, d/n/f/0), or "on"/"of(f)". */
function parse_bool(text: string): boolean | null {
  const s = text.toLowerCase();
  if ("eyt1".includes(s[0] ?? "x")) return true;
  if ("dnf0".includes(s[0] ?? "x")) return false;
  if (s[0] === "o" && s[1] === "n") return true;
  if (s[0] === "o" && s[1] === "f") return false;
  return null;
}

function to_int32(v: number): number {
  const u = ((v % 2 ** 32) + 2 ** 32) % 2 ** 32;
  return u >= 2 ** 31 ? u - 2 ** 32 : u;
}

type NumKnobKind = "ulong" | "u32" | "atomic";

function num_knob(get: () => number, set: (v: number) => void, kind: NumKnobKind): knob {
  return {
    read: () => `${get()}\n`,
    write: (text) => {
      const v = parse_integer(text, kind === "atomic");
      if (v === null) return -EINVAL;
      if (!Number.isSafeInteger(v)) return -ERANGE;
      // debugfs u32 and atomic_t files store the 64-bit value truncated, as the kernel does.
      set(kind === "u32" ? v % 2 ** 32 : kind === "atomic" ? to_int32(v) : v);
      return 0;
    },
  };
}

function bool_knob(get: () => boolean, set: (v: boolean) => void): knob {
  return {
    read: () => (get() ? "Y\n" : "N\n"),
    write: (text) => {
      const v = parse_bool(text);
      if (v === null) return -EINVAL;
      set(v);
      return 0;
    },
  };
}

/** The files fault_create_debugfs_attr() creates (without the stacktrace filter ones). */
function fault_attr_knobs(attr: fault_attr): Map<string, knob> {
  const rs = attr.ratelimit_state;
  return new Map<string, knob>([
    ["probability", num_knob(() => attr.probability, (v) => (attr.probability = v), "ulong")],
    ["interval", num_knob(() => attr.interval, (v) => (attr.interval = v), "ulong")],
    ["times", num_knob(() => attr.times, (v) => (attr.times = v), "atomic")],
    ["space", num_knob(() => attr.space, (v) => (attr.space = v), "atomic")],
    ["verbose", num_knob(() => attr.verbose, (v) => (attr.verbose = v), "ulong")],
    // Named _ms but stored straight into the jiffies field, as the kernel does.
    ["verbose_ratelimit_interval_ms", num_knob(() => rs.interval, (v) => (rs.interval = v), "u32")],
    ["verbose_ratelimit_burst", num_knob(() => rs.burst, (v) => (rs.burst = v), "u32")],
    ["task-filter", bool_knob(() => attr.task_filter, (v) => (attr.task_filter = v))],
  ]);
}

// ---- the service ------------------------------------------------------------------------------

/** mm/failslab.c's `failslab` */
export interface failslab_state {
  readonly attr: fault_attr;
  ignore_gfp_reclaim: boolean;
  cache_filter: boolean;
}

/** mm/fail_page_alloc.c's `fail_page_alloc` */
export interface fail_page_alloc_state {
  readonly attr: fault_attr;
  ignore_gfp_highmem: boolean;
  ignore_gfp_reclaim: boolean;
  min_order: number;
}

@injectable()
export class FaultInjection implements KernelService {
  readonly failslab: failslab_state;
  readonly fail_page_alloc: fail_page_alloc_state;
  readonly fail_usercopy: fault_attr;
  /** /sys/kernel/debug/<dir>/<file> for every capability and registered point. */
  private readonly dirs = new Map<string, Map<string, knob>>();
  /** Points registered by drivers, by debugfs name. */
  private readonly points = new Map<string, fault_attr>();
  /** Boot options "<name>=<args>" from the kernel command line. */
  private readonly boot_options = new Map<string, string>();

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(MACHINE_SPEC) spec: MachineSpec,
  ) {
    for (const tok of (spec.cmdline ?? "").split(/\s+/)) {
      const eq = tok.indexOf("=");
      if (eq > 0) this.boot_options.set(tok.slice(0, eq), tok.slice(eq + 1));
    }
    this.failslab = { attr: new fault_attr("failslab", k), ignore_gfp_reclaim: true, cache_filter: false };
    this.fail_page_alloc = {
      attr: new fault_attr("fail_page_alloc", k), ignore_gfp_highmem: true, ignore_gfp_reclaim: true, min_order: 1,
    };
    this.fail_usercopy = new fault_attr("fail_usercopy", k);
    this.create_dirs();
  }

  /** __setup("failslab=") and friends run at boot, after the command line is printed. */
  init(): void {
    for (const attr of [this.failslab.attr, this.fail_page_alloc.attr, this.fail_usercopy]) this.apply_boot_option(attr);
  }

  private apply_boot_option(attr: fault_attr): void {
    const arg = this.boot_options.get(attr.dname);
    if (arg !== undefined) setup_fault_attr(attr, arg);
  }

  private create_dirs(): void {
    const fs = this.failslab;
    const slab = fault_attr_knobs(fs.attr);
    slab.set("ignore-gfp-wait", bool_knob(() => fs.ignore_gfp_reclaim, (v) => (fs.ignore_gfp_reclaim = v)));
    slab.set("cache-filter", bool_knob(() => fs.cache_filter, (v) => (fs.cache_filter = v)));
    this.dirs.set("failslab", slab);

    const fp = this.fail_page_alloc;
    const page = fault_attr_knobs(fp.attr);
    page.set("ignore-gfp-wait", bool_knob(() => fp.ignore_gfp_reclaim, (v) => (fp.ignore_gfp_reclaim = v)));
    page.set("ignore-gfp-highmem", bool_knob(() => fp.ignore_gfp_highmem, (v) => (fp.ignore_gfp_highmem = v)));
    page.set("min-order", num_knob(() => fp.min_order, (v) => (fp.min_order = v), "u32"));
    this.dirs.set("fail_page_alloc", page);

    this.dirs.set("fail_usercopy", fault_attr_knobs(this.fail_usercopy));
  }

  // ---- capabilities -----------------------------------------------------------------------

  /**
   * should_failslab(): -ENOMEM if this slab allocation is to fail, else 0. __GFP_NOFAIL and,
   * with ignore-gfp-wait (default Y), sleeping allocations are filtered out before
   * should_fail_ex() — so, as in the kernel, they do not even consume a fail-nth count.
   */
  should_failslab(size: number, gfp: gfp_t, slab_flags = 0): number {
    const fs = this.failslab;
    if (gfp & __GFP_NOFAIL) return 0;
    if (fs.ignore_gfp_reclaim && gfp & __GFP_DIRECT_RECLAIM) return 0;
    if (fs.cache_filter && !(slab_flags & SLAB_FAILSLAB)) return 0;
    return should_fail_ex(fs.attr, size, gfp & __GFP_NOWARN ? FAULT_NOWARN : 0) ? -ENOMEM : 0;
  }

  /** __should_fail_alloc_page(): size is counted in pages (1 << order). */
  should_fail_alloc_page(gfp: gfp_t, order: number): boolean {
    const fp = this.fail_page_alloc;
    if (order < fp.min_order) return false;
    if (gfp & __GFP_NOFAIL) return false;
    if (fp.ignore_gfp_highmem && gfp & __GFP_HIGHMEM) return false;
    if (fp.ignore_gfp_reclaim && gfp & __GFP_DIRECT_RECLAIM) return false;
    return should_fail_ex(fp.attr, 2 ** order, gfp & __GFP_NOWARN ? FAULT_NOWARN : 0);
  }

  /** should_fail_usercopy(): copy_{to,from}_user reports everything uncopied when it fails. */
  should_fail_usercopy(): boolean {
    return should_fail(this.fail_usercopy, 1);
  }

  /**
   * A driver-specific point (DECLARE_FAULT_ATTR + fault_create_debugfs_attr + its own boot
   * option "<name>=..."): the driver calls should_fail(attr, size) where it may fail. A name
   * already registered returns the existing attribute, so its knobs survive a module reload.
   */
  register_fault_point(name: string): fault_attr {
    const old = this.points.get(name);
    if (old) return old;
    const attr = new fault_attr(name, this.k);
    this.apply_boot_option(attr);
    this.points.set(name, attr);
    this.dirs.set(name, fault_attr_knobs(attr));
    return attr;
  }

  /** debugfs_remove_recursive() of a point's directory. */
  unregister_fault_point(name: string): void {
    if (this.points.delete(name)) this.dirs.delete(name);
  }

  // ---- debugfs / procfs text interface ----------------------------------------------------

  /** Directories under /sys/kernel/debug that hold fault-injection knobs. */
  caps(): string[] {
    return [...this.dirs.keys()];
  }

  /** Files of /sys/kernel/debug/<cap>/, or null if there is no such directory. */
  knobs(cap: string): string[] | null {
    const d = this.dirs.get(cap);
    return d ? [...d.keys()] : null;
  }

  /** Contents of /sys/kernel/debug/<cap>/<knob> ("100\n", "Y\n"), or -ENOENT. */
  read_knob(cap: string, knob: string): string | number {
    return this.dirs.get(cap)?.get(knob)?.read() ?? -ENOENT;
  }

  /** Writes /sys/kernel/debug/<cap>/<knob>: 0, -ENOENT, or -EINVAL/-ERANGE for bad text. */
  write_knob(cap: string, knob: string, value: string): number {
    const f = this.dirs.get(cap)?.get(knob);
    return f ? f.write(value) : -ENOENT;
  }

  /** Write to /proc/<pid>/fail-nth: fail the n-th injectable call of `task` (0 disarms). */
  set_fail_nth(task: task_struct, n: number): number {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) return -EINVAL;
    task.fail_nth = n;
    return 0;
  }

  /** Read of /proc/<pid>/fail-nth: calls still to go; 0 once the failure was injected. */
  get_fail_nth(task: task_struct): number {
    return task.fail_nth;
  }

  /** Write to /proc/<pid>/make-it-fail: 0 or 1, anything else -EINVAL. */
  set_make_it_fail(task: task_struct, v: number): number {
    if (v !== 0 && v !== 1) return -EINVAL;
    task.make_it_fail = v === 1;
    return 0;
  }
}
