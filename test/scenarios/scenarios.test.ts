// Every built-in scenario runs in CI: it must succeed (its own checks, a clean shutdown), its
// function_graph trace must contain the expected chain of kernel functions in order — both in
// the recorded calls and in the ftrace text a reader sees — and its Perfetto JSON must be valid
// Trace Event Format with one named track per context.

import { describe, expect, it } from "vitest";
import { builtin_scenarios } from "../../tools/scenarios/builtin/index.ts";
import { find_chain_gap, run_scenario } from "../../tools/scenarios/runner.ts";
import { validate_trace_events } from "../../tools/scenarios/trace_event_format.ts";

/** Function names in the order the function_graph text shows their entries. */
function functions_in_text(text: string): Array<{ func: string }> {
  const out: Array<{ func: string }> = [];
  for (const line of text.split("\n")) {
    const m = /\|\s+([\w.$]+)\(\)(?: \{|;)$/.exec(line);
    if (m) out.push({ func: m[1]! });
  }
  return out;
}

describe("built-in scenarios", () => {
  for (const s of builtin_scenarios) {
    it(`${s.name}: runs, traces its call chain in order, exports valid Perfetto JSON`, async () => {
      const r = await run_scenario(s, { seed: 0 });
      expect(r.error).toBeNull();
      expect(r.checks).toEqual([]);
      expect(r.problems).toEqual([]);
      expect(r.splats).toEqual([]);
      expect(s.expected_chain?.length).toBeGreaterThan(3);
      expect(find_chain_gap(r.calls, s.expected_chain!)).toBeNull();
      expect(find_chain_gap(functions_in_text(r.trace_text), s.expected_chain!)).toBeNull();
      const json = JSON.parse(JSON.stringify(r.perfetto)) as unknown;
      expect(validate_trace_events(json)).toEqual([]);
      expect(r.ok).toBe(true);
    }, 60_000);
  }

  it("the chain check notices a function out of order", async () => {
    const s = builtin_scenarios.find((x) => x.name === "dmirror-migrate")!;
    const r = await run_scenario(s, { seed: 0 });
    expect(find_chain_gap(r.calls, ["migrate_vma_finalize", "migrate_vma_setup"])).toBe("migrate_vma_setup");
    expect(find_chain_gap(r.calls, ["migrate_vma_setup", "no_such_function"])).toBe("no_such_function");
  }, 60_000);
});
