// KUnit suite for kernel/trace: tracepoints and set_event, probes, the ring buffer, the
// function_graph tracer on virtual time (nesting per context, sync and async functions), the
// ftrace text of both tracers, and the Chrome/Perfetto JSON export.

import { TRACE } from "../../../kernel/tokens.ts";
import type { Tracing, PerfettoEvent } from "../../../kernel/trace/trace.ts";
import { trace_print_graph_duration, trace_find_mark } from "../../../kernel/trace/trace_functions_graph.ts";
import { TASK_UNINTERRUPTIBLE } from "../../../kernel/sched/core.ts";
import { NSEC_PER_MSEC } from "../../../kernel/time/timekeeping.ts";
import { timer_list } from "../../../kernel/time/timer.ts";
import { EINVAL } from "../../../include/uapi/asm-generic/errno.ts";
import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";

function tr_of(test: kunit): Tracing {
  return test.machine.symbol(TRACE);
}

type demo_args = { id: number; what: string };

function demo_event(tr: Tracing) {
  return tr.define_trace_event<demo_args>("kunit", "kunit_demo", (a) => `id=${a.id} what=${a.what}`);
}

function events_follow_set_event(test: kunit): void {
  const tr = tr_of(test);
  const ev = demo_event(tr);
  const other = tr.define_trace_event<{ n: number }>("kunit2", "kunit_other", (a) => `n=${a.n}`);
  KUNIT_EXPECT_FALSE(test, ev.enabled, "events start disabled");
  ev.trace({ id: 1, what: "off" });
  KUNIT_EXPECT_EQ(test, tr.entries().length, 0);
  KUNIT_EXPECT_EQ(test, tr.set_event("kunit:kunit_demo"), 0);
  KUNIT_EXPECT_TRUE(test, ev.enabled);
  ev.trace({ id: 2, what: "on" });
  other.trace({ n: 1 });
  KUNIT_EXPECT_EQ(test, tr.entries().map((e) => `${e.system}:${e.name} ${e.text}`).join("|"), "kunit:kunit_demo id=2 what=on");
  KUNIT_EXPECT_EQ(test, tr.set_event("!kunit:kunit_demo"), 0);
  KUNIT_EXPECT_FALSE(test, ev.enabled);
  KUNIT_EXPECT_EQ(test, tr.set_event("kunit2:*"), 0);
  KUNIT_EXPECT_EQ(test, tr.read_set_event().join(","), "kunit2:kunit_other");
  KUNIT_EXPECT_EQ(test, tr.set_event("kunit"), 0, "a bare word matches a system");
  KUNIT_EXPECT_TRUE(test, ev.enabled);
  KUNIT_EXPECT_EQ(test, tr.set_event("no_such_event"), -EINVAL);
  KUNIT_EXPECT_EQ(test, tr.set_event("*:*", false), 0);
  KUNIT_EXPECT_EQ(test, tr.read_set_event().length, 0);
  KUNIT_EXPECT_TRUE(test, tr.available_events().includes("kunit:kunit_demo"));
  KUNIT_EXPECT_EQ(test, demo_event(tr), ev, "defining it again returns the same event");
}

function probes_enable_the_tracepoint(test: kunit): void {
  const tr = tr_of(test);
  const ev = demo_event(tr);
  const seen: number[] = [];
  const detach = ev.register_probe((a) => seen.push(a.id));
  KUNIT_EXPECT_TRUE(test, ev.enabled, "a probe turns the static key on");
  ev.trace({ id: 7, what: "probe" });
  KUNIT_EXPECT_EQ(test, seen.join(","), "7");
  KUNIT_EXPECT_EQ(test, tr.entries().length, 0, "but only set_event records into the buffer");
  detach();
  KUNIT_EXPECT_FALSE(test, ev.enabled);
}

function fields_are_copied_when_recorded(test: kunit): void {
  const tr = tr_of(test);
  const ev = demo_event(tr);
  tr.set_event("kunit:kunit_demo");
  const args = { id: 1, what: "before" };
  ev.trace(args);
  args.what = "after";
  KUNIT_EXPECT_EQ(test, tr.entries()[0]?.text, "id=1 what=before");
  const e = tr.entries()[0]!;
  KUNIT_EXPECT_EQ(test, e.pid, test.k.current.pid);
  KUNIT_EXPECT_EQ(test, e.comm, test.k.current.comm);
  KUNIT_EXPECT_EQ(test, e.kind, "kthread");
}

function nop_trace_text_has_the_kernel_shape(test: kunit): void {
  const tr = tr_of(test);
  const ev = demo_event(tr);
  tr.set_event("kunit:*");
  test.k.udelay(1_234_567);
  ev.trace({ id: 3, what: "text" });
  test.k.sched.run_atomic("hardirq", "irq/42-kunit", () => ev.trace({ id: 4, what: "irq" }));
  const lines = tr.trace_output().split("\n");
  KUNIT_EXPECT_EQ(test, lines[0], "# tracer: nop");
  KUNIT_EXPECT_EQ(test, lines[2], "# entries-in-buffer/entries-written: 2/2   #P:1");
  KUNIT_EXPECT_EQ(test, lines[10], "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION");
  const comm = test.k.current.comm;
  const pid = test.k.current.pid;
  const want = `${comm.padStart(16)}-${String(pid).padEnd(7)} [000] .....     1.234567: kunit_demo: id=3 what=text`;
  KUNIT_EXPECT_EQ(test, lines[12], want);
  KUNIT_EXPECT_TRUE(test, /^ +irq\/42-kunit-0 +\[000\] d\.h\.\. +1\.234567: kunit_demo: id=4 what=irq$/.test(lines[13] ?? ""), lines[13]);
}

function ring_buffer_overwrites_oldest_and_tracing_on(test: kunit): void {
  const tr = tr_of(test);
  const ev = demo_event(tr);
  tr.set_event("kunit:kunit_demo");
  KUNIT_EXPECT_EQ(test, tr.set_buffer_entries(4), 0);
  for (let i = 0; i < 10; i++) ev.trace({ id: i, what: "x" });
  KUNIT_EXPECT_EQ(test, tr.entries().map((e) => e.fields.id).join(","), "6,7,8,9");
  KUNIT_EXPECT_TRUE(test, tr.trace_output().includes("entries-in-buffer/entries-written: 4/10"));
  tr.set_tracing_on(false);
  ev.trace({ id: 99, what: "off" });
  KUNIT_EXPECT_EQ(test, tr.entries().length, 4, "tracing_on=0 records nothing");
  tr.set_tracing_on(true);
  const got: number[] = [];
  const detach = tr.add_sink((e) => got.push(e.fields.id as number));
  ev.trace({ id: 100, what: "sink" });
  detach();
  KUNIT_EXPECT_EQ(test, got.join(","), "100");
  tr.trace_clear();
  KUNIT_EXPECT_EQ(test, tr.entries().length, 0);
  KUNIT_EXPECT_EQ(test, tr.set_buffer_entries(0), -EINVAL);
}

function graph_duration_format(test: kunit): void {
  KUNIT_EXPECT_EQ(test, trace_print_graph_duration(1382), "1.382 us    ");
  KUNIT_EXPECT_EQ(test, trace_print_graph_duration(23_000), "23.000 us   ");
  KUNIT_EXPECT_EQ(test, trace_print_graph_duration(1_234_567_890), "1234567 us  ", "7 digits: no ns part, same width");
  KUNIT_EXPECT_EQ(test, trace_find_mark(5_000), " ");
  KUNIT_EXPECT_EQ(test, trace_find_mark(20_000), "+");
  KUNIT_EXPECT_EQ(test, trace_find_mark(200_000), "!");
  KUNIT_EXPECT_EQ(test, trace_find_mark(2e9), "$");
}

function function_graph_nests_with_virtual_durations(test: kunit): void {
  const tr = tr_of(test);
  KUNIT_EXPECT_EQ(test, tr.set_current_tracer("function_graph"), 0);
  KUNIT_EXPECT_EQ(test, tr.set_current_tracer("function"), -EINVAL, "only nop and function_graph exist");
  const ev = demo_event(tr);
  tr.set_event("kunit:kunit_demo");
  const r = tr.trace_fn("outer_fn", () => {
    tr.trace_fn("leaf_fn", () => test.k.udelay(3));
    tr.trace_fn("middle_fn", () => {
      ev.trace({ id: 1, what: "inside" });
      tr.trace_fn("leaf_fn", () => test.k.udelay(20));
    });
    return 42;
  });
  KUNIT_EXPECT_EQ(test, r, 42, "trace_fn returns what fn returns");
  const text = tr.trace_output().split("\n");
  KUNIT_EXPECT_EQ(test, text.slice(0, 4).join("\n"), [
    "# tracer: function_graph",
    "#",
    "# CPU  DURATION                  FUNCTION CALLS",
    "# |     |   |                     |   |   |   |",
  ].join("\n"));
  KUNIT_EXPECT_EQ(test, text.slice(4, 11).join("\n"), [
    " 0)               |  outer_fn() {",
    " 0)   3.000 us    |    leaf_fn();",
    " 0)               |    middle_fn() {",
    " 0)               |      /* kunit_demo: id=1 what=inside */",
    " 0) + 20.000 us   |      leaf_fn();",
    " 0) + 20.000 us   |    }",
    " 0) + 23.000 us   |  }",
  ].join("\n"));
  const exits = tr.entries().filter((e) => e.name === "funcgraph_exit");
  KUNIT_EXPECT_EQ(test, exits.map((e) => `${e.fields.func}@${e.fields.depth}`).join(","), "leaf_fn@1,leaf_fn@2,middle_fn@1,outer_fn@0");
}

function graph_survives_exceptions(test: kunit): void {
  const tr = tr_of(test);
  tr.set_current_tracer("function_graph");
  let caught = false;
  try {
    tr.trace_fn("throwing_fn", () => {
      throw new Error("boom");
    });
  } catch {
    caught = true;
  }
  KUNIT_EXPECT_TRUE(test, caught);
  tr.funcgraph_entry("manual_fn");
  tr.funcgraph_exit("manual_fn");
  KUNIT_EXPECT_EQ(test, tr.entries().map((e) => e.name).join(","), "funcgraph_entry,funcgraph_exit,funcgraph_entry,funcgraph_exit");
  KUNIT_EXPECT_EQ(test, tr.entries()[2]?.fields.depth, 0, "the exception did not leave a frame open");
}

function tracing_off_costs_no_records(test: kunit): void {
  const tr = tr_of(test);
  let calls = 0;
  const v = tr.trace_fn("untraced_fn", () => ++calls);
  KUNIT_EXPECT_EQ(test, v, 1);
  tr.funcgraph_entry("untraced_fn");
  tr.funcgraph_exit("untraced_fn");
  KUNIT_EXPECT_EQ(test, tr.entries().length, 0, "nop tracer: function calls are not recorded");
}

/** Two kthreads interleave async traced functions that sleep on virtual time. */
async function run_two_sleepers(test: kunit, tr: Tracing): Promise<void> {
  const sleeper = (ms: number) => tr.trace_fn(`sleep_${ms}ms`, async () => {
    await tr.trace_fn("inner_sleep", () => test.k.msleep(ms));
  });
  await test.k.sched.wait_for(Promise.all([
    test.k.sched.kthread_run(() => sleeper(5), "kunit_sleeper_a"),
    test.k.sched.kthread_run(() => sleeper(2), "kunit_sleeper_b"),
  ]));
}

async function async_functions_nest_per_context(test: kunit): Promise<void> {
  const tr = tr_of(test);
  tr.set_current_tracer("function_graph");
  await run_two_sleepers(test, tr);
  const exits = tr.entries().filter((e) => e.name === "funcgraph_exit");
  const dur = (comm: string, func: string) => {
    const e = exits.find((x) => x.comm === comm && x.fields.func === func)!;
    return (e.fields.rettime as number) - (e.fields.calltime as number);
  };
  KUNIT_EXPECT_EQ(test, dur("kunit_sleeper_a", "sleep_5ms"), 5 * NSEC_PER_MSEC);
  KUNIT_EXPECT_EQ(test, dur("kunit_sleeper_b", "sleep_2ms"), 2 * NSEC_PER_MSEC);
  KUNIT_EXPECT_EQ(test, exits.filter((e) => e.fields.func === "inner_sleep").map((e) => e.fields.depth).join(","), "1,1",
    "each context has its own depth");
  const text = tr.trace_output();
  KUNIT_EXPECT_TRUE(test, text.includes(" ------------------------------------------"), "context switches are marked");
  KUNIT_EXPECT_TRUE(test, /=> +kunit_s-\d+/.test(text), "comm cut to 7 characters");
  KUNIT_EXPECT_TRUE(test, text.includes(" 0) # 5000.000 us |  }"), "5 ms: the '#' overhead mark");
}

function perfetto_events_of(tr: Tracing): PerfettoEvent[] {
  const parsed = JSON.parse(tr.perfetto_json()) as { traceEvents: PerfettoEvent[] };
  return parsed.traceEvents;
}

async function perfetto_json_is_balanced_per_track(test: kunit): Promise<void> {
  const tr = tr_of(test);
  tr.set_current_tracer("function_graph");
  const ev = demo_event(tr);
  const hw = tr.define_trace_event<{ bytes: number }>("kunit_hw", "kunit_dma", (a) => `bytes=${a.bytes}`);
  tr.set_event("kunit:*");
  tr.set_event("kunit_hw:*");
  await run_two_sleepers(test, tr);
  test.k.sched.run_atomic("hardirq", "irq/42-kunit", () => tr.trace_fn("kunit_irq_handler", () => ev.trace({ id: 9, what: "irq" })));
  const start = test.k.ktime_get();
  const done = new Promise<void>((res) => {
    test.k.timers.add_timer_in(new timer_list(() => {
      hw.trace_span({ bytes: 4096 }, start);
      res();
    }, "kunit_sdma0", "hw"), 1000);
  });
  test.k.sched.set_current_state(TASK_UNINTERRUPTIBLE);
  await test.k.schedule_timeout(2000);
  await done;
  tr.funcgraph_entry("left_open_fn");

  const events = perfetto_events_of(tr);
  for (const e of events) {
    KUNIT_ASSERT_TRUE(test, typeof e.ph === "string" && typeof e.name === "string" && Number.isInteger(e.pid) && Number.isInteger(e.tid),
      JSON.stringify(e));
    if (e.ph !== "M") KUNIT_ASSERT_TRUE(test, typeof e.ts === "number", JSON.stringify(e));
  }
  const names = new Map(events.filter((e) => e.ph === "M" && e.name === "thread_name").map((e) => [e.tid, String(e.args?.name)]));
  const depth = new Map<number, string[]>();
  for (const e of events) {
    if (e.ph === "B") depth.set(e.tid, [...(depth.get(e.tid) ?? []), e.name]);
    if (e.ph === "E") {
      const st = depth.get(e.tid) ?? [];
      KUNIT_ASSERT_EQ(test, st.pop(), e.name, `E matches the innermost B on tid ${e.tid}`);
      depth.set(e.tid, st);
    }
    if (e.ph !== "M") KUNIT_EXPECT_TRUE(test, names.has(e.tid), `tid ${e.tid} has a thread_name`);
  }
  for (const [tid, st] of depth) KUNIT_EXPECT_EQ(test, st.length, 0, `B/E balanced on tid ${tid}`);
  const track = (label: string) => [...names.entries()].find(([, n]) => n.includes(label))?.[0];
  KUNIT_EXPECT_TRUE(test, track("kunit_sleeper_a") !== undefined && track("kunit_sleeper_b") !== undefined);
  KUNIT_EXPECT_TRUE(test, track("irq/42-kunit (hardirq)") !== undefined, [...names.values()].join(","));
  const irq_instant = events.find((e) => e.ph === "i" && e.name === "kunit_demo");
  KUNIT_EXPECT_EQ(test, irq_instant?.tid, track("irq/42-kunit (hardirq)"));
  KUNIT_EXPECT_EQ(test, irq_instant?.s, "t");
  const span = events.find((e) => e.ph === "X" && e.name === "kunit_dma");
  KUNIT_EXPECT_EQ(test, span?.tid, track("kunit_sdma0 (hw)"), "a hardware engine gets its own track");
  KUNIT_EXPECT_EQ(test, span?.dur, 1, "1000 ns = 1 µs");
  KUNIT_EXPECT_EQ(test, span?.args?.bytes, 4096);
  const sleep = events.find((e) => e.ph === "B" && e.name === "sleep_5ms");
  const sleep_end = events.find((e) => e.ph === "E" && e.name === "sleep_5ms");
  KUNIT_EXPECT_EQ(test, (sleep_end?.ts ?? 0) - (sleep?.ts ?? 0), 5000, "ts in µs of virtual time");
  KUNIT_EXPECT_TRUE(test, events.some((e) => e.ph === "E" && e.name === "left_open_fn"), "open calls are closed at the end");
  tr.funcgraph_exit("left_open_fn");
}

export const trace_suite: kunit_suite = {
  name: "trace",
  test_cases: [
    KUNIT_CASE(events_follow_set_event),
    KUNIT_CASE(probes_enable_the_tracepoint),
    KUNIT_CASE(fields_are_copied_when_recorded),
    KUNIT_CASE(nop_trace_text_has_the_kernel_shape),
    KUNIT_CASE(ring_buffer_overwrites_oldest_and_tracing_on),
    KUNIT_CASE(graph_duration_format),
    KUNIT_CASE(function_graph_nests_with_virtual_durations),
    KUNIT_CASE(graph_survives_exceptions),
    KUNIT_CASE(tracing_off_costs_no_records),
    KUNIT_CASE(async_functions_nest_per_context),
    KUNIT_CASE(perfetto_json_is_balanced_per_track),
  ],
};
