// Kernel-core benchmarks (host time, not virtual time): context switches between two kthreads,
// uncontended mutex lock+unlock, kmalloc/kfree with and without saved call stacks, and the cost
// of a tracepoint and a function_graph-traced call when disabled versus enabled.

import { Bench, type FnReturnedObject } from "tinybench";
import { boot } from "../kernel/boot.ts";
import { MINIMAL_MACHINE } from "../kernel/machine_spec.ts";
import type { Machine } from "../kernel/machine.ts";
import { SLAB, TRACE } from "../kernel/tokens.ts";
import { TASK_RUNNING, TASK_UNINTERRUPTIBLE, type task_struct } from "../kernel/sched/core.ts";
import { mutex, mutex_lock, mutex_unlock } from "../kernel/locking/mutex.ts";
import { GFP_KERNEL } from "../include/linux/gfp_types.ts";
import type { BenchResult } from "./run.ts";

const INNER = 1000;

/** One tinybench iteration = INNER calls, reported per call (sub-µs work beats timer overhead). */
function batched(fn: () => void): () => FnReturnedObject {
  return () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < INNER; i++) fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { overriddenDuration: ms / INNER, overriddenIterationCost: ms };
  };
}

/** Mean ns per call of each task, by name. */
async function ns_per_call(tasks: Record<string, () => void>): Promise<Map<string, number>> {
  const bench = new Bench({ time: 400, warmupTime: 100 });
  for (const [name, fn] of Object.entries(tasks)) bench.add(name, batched(fn));
  await bench.run();
  const out = new Map<string, number>();
  for (const t of bench.tasks) {
    const r = t.result;
    if (r.state === "completed" || r.state === "aborted-with-statistics") out.set(t.name, r.latency.mean * 1e6);
  }
  return out;
}

function host_seconds_since(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Two kthreads hand a turn back and forth with set_current_state/schedule/wake_up_process. */
async function context_switches(m: Machine): Promise<BenchResult> {
  const s = m.k.sched;
  const ROUNDS = 50_000;
  let turn = 0;
  const tasks = [s.alloc_task("bench/ping", "kthread"), s.alloc_task("bench/pong", "kthread")];
  const body = (me: number, peer: task_struct) => async () => {
    for (let i = 0; i < ROUNDS; i++) {
      while (turn !== me) {
        s.set_current_state(TASK_UNINTERRUPTIBLE);
        s.current.wait_desc = "ping-pong turn";
        if (turn !== me) await s.schedule();
        else s.set_current_state(TASK_RUNNING);
      }
      turn = 1 - me;
      s.wake_up_process(peer);
    }
  };
  const sw0 = s.nr_switches;
  const t0 = process.hrtime.bigint();
  await Promise.all([s.run_task(tasks[0]!, body(0, tasks[1]!)), s.run_task(tasks[1]!, body(1, tasks[0]!))]);
  const secs = host_seconds_since(t0);
  for (const t of tasks) s.release_task(t);
  const switches = s.nr_switches - sw0;
  return { metric: "context switches", value: switches / secs, unit: "switch/s", note: `${ROUNDS} ping-pong rounds, ${switches} switches` };
}

async function mutex_uncontended(m: Machine): Promise<BenchResult> {
  const N = 200_000;
  const lock = new mutex(m.k, "bench_mutex");
  const secs = await m.run_kthread("bench/mutex", async () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      await mutex_lock(lock);
      mutex_unlock(lock);
    }
    return host_seconds_since(t0);
  });
  return { metric: "mutex lock+unlock (uncontended)", value: N / secs, unit: "op/s", note: "lockdep on" };
}

async function slab_ops(m: Machine): Promise<BenchResult[]> {
  const slab = m.symbol(SLAB);
  const cache = slab.kmem_cache_create("bench_cache", 96)!;
  const ns = await ns_per_call({
    stacks: () => slab.kfree(slab.kmalloc(64, GFP_KERNEL)),
    site: () => slab.kfree(slab.kmalloc(64, GFP_KERNEL, "bench_site")),
    obj: () => slab.kfree(slab.kmalloc_obj({ v: 1 }, 64, GFP_KERNEL, "bench_site")),
    cache: () => slab.kmem_cache_free(cache, slab.kmem_cache_alloc(cache, GFP_KERNEL, "bench_site")),
  });
  slab.kmem_cache_destroy(cache);
  const per_s = (name: string) => 1e9 / (ns.get(name) ?? NaN);
  return [
    { metric: "kmalloc+kfree 64 B (call stacks saved)", value: per_s("stacks"), unit: "op/s", note: "default: allocation backtrace saved for kmemleak" },
    { metric: "kmalloc+kfree 64 B (site label)", value: per_s("site"), unit: "op/s", baseline: per_s("stacks"), note: "no stack capture; baseline = with stacks" },
    { metric: "kmalloc_obj+kfree (site label)", value: per_s("obj"), unit: "op/s", note: "accounting only, no buffer" },
    { metric: "kmem_cache_alloc+free (site label)", value: per_s("cache"), unit: "op/s" },
  ];
}

async function tracing_costs(m: Machine): Promise<BenchResult[]> {
  const tr = m.symbol(TRACE);
  const ev = tr.define_trace_event<{ id: number }>("bench", "bench_event", (a) => `id=${a.id}`);
  let sink = 0;
  const work = () => {
    sink++;
  };
  const off = await ns_per_call({
    call: () => work(),
    tracepoint: () => ev.trace({ id: sink }),
    trace_fn: () => tr.trace_fn("bench_fn", work),
  });
  tr.set_event("bench:bench_event");
  tr.set_current_tracer("function_graph");
  const on = await ns_per_call({
    tracepoint: () => ev.trace({ id: sink }),
    trace_fn: () => tr.trace_fn("bench_fn", work),
  });
  tr.set_current_tracer("nop");
  tr.set_event("*:*", false);
  const base = off.get("call");
  return [
    { metric: "tracepoint, disabled", value: off.get("tracepoint") ?? NaN, unit: "ns/call", baseline: base, note: "baseline = plain function call" },
    { metric: "tracepoint, enabled (ring buffer)", value: on.get("tracepoint") ?? NaN, unit: "ns/call", baseline: off.get("tracepoint") },
    { metric: "trace_fn, function_graph off", value: off.get("trace_fn") ?? NaN, unit: "ns/call", baseline: base, note: "baseline = plain function call" },
    { metric: "trace_fn, function_graph on", value: on.get("trace_fn") ?? NaN, unit: "ns/call", baseline: off.get("trace_fn"), note: "entry + exit records" },
  ];
}

export async function run(): Promise<BenchResult[]> {
  const m = await boot({ ...MINIMAL_MACHINE, name: "bench" });
  const results = [await context_switches(m), await mutex_uncontended(m), ...(await slab_ops(m)), ...(await tracing_costs(m))];
  await m.shutdown();
  return results;
}
