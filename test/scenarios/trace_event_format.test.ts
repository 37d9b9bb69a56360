// The Trace Event Format validator itself: what it accepts and what it rejects.

import { describe, expect, it } from "vitest";
import { validate_trace_events } from "../../tools/scenarios/trace_event_format.ts";

const named = [
  { ph: "M", name: "process_name", pid: 1, tid: 0, args: { name: "kemu" } },
  { ph: "M", name: "thread_name", pid: 1, tid: 3, args: { name: "a.out-3" } },
];

describe("validate_trace_events", () => {
  it("accepts nested B/E, complete, instant and metadata events", () => {
    const doc = {
      displayTimeUnit: "ns",
      traceEvents: [
        ...named,
        { ph: "B", name: "outer", pid: 1, tid: 3, ts: 1 },
        { ph: "B", name: "inner", pid: 1, tid: 3, ts: 2 },
        { ph: "i", s: "t", name: "ev", cat: "sys", pid: 1, tid: 3, ts: 2.5, args: { x: 1 } },
        { ph: "E", name: "inner", pid: 1, tid: 3, ts: 3 },
        { ph: "E", name: "outer", pid: 1, tid: 3, ts: 3 },
        { ph: "X", name: "dma", pid: 1, tid: 3, ts: 0, dur: 4 },
      ],
    };
    expect(validate_trace_events(doc)).toEqual([]);
    expect(validate_trace_events(doc.traceEvents)).toEqual([]);
  });

  it("rejects what viewers cannot pair or place", () => {
    const cases: Array<[unknown[], RegExp]> = [
      [[{ ph: "B", name: "f", pid: 1, tid: 3, ts: 1 }], /never ends/],
      [[{ ph: "E", name: "f", pid: 1, tid: 3, ts: 1 }], /no open B/],
      [[{ ph: "B", name: "f", pid: 1, tid: 3, ts: 5 }, { ph: "E", name: "f", pid: 1, tid: 3, ts: 1 }], /before its B/],
      [[{ ph: "B", name: "f", pid: 1, tid: 3, ts: 1 }, { ph: "E", name: "g", pid: 1, tid: 3, ts: 2 }], /closes "f"/],
      [[{ ph: "X", name: "f", pid: 1, tid: 3, ts: 1 }], /needs dur/],
      [[{ ph: "Q", name: "f", pid: 1, tid: 3, ts: 1 }], /unknown phase/],
      [[{ ph: "i", name: "f", pid: 1, tid: 3, ts: -1 }], /ts must be/],
      [[{ ph: "i", name: "f", pid: "1", tid: 3, ts: 1 }], /pid must be an integer/],
      [[{ ph: "i", name: "f", pid: 1, tid: 3, ts: 1, s: "x" }], /scope/],
      [[{ ph: "M", name: "thread_name", pid: 1, tid: 3, args: {} }], /needs args.name/],
      [[{ ph: "i", name: "f", pid: 1, tid: 9, ts: 1 }], /no thread_name/],
    ];
    for (const [events, re] of cases) {
      const problems = validate_trace_events({ traceEvents: [...named, ...events] });
      expect(problems.join("\n")).toMatch(re);
    }
    expect(validate_trace_events({ traceEvents: [], displayTimeUnit: "s" })).toEqual([`displayTimeUnit must be "ms" or "ns"`]);
    expect(validate_trace_events({})).toEqual(["no traceEvents array"]);
  });
});
