// Seed sweeps are deterministic: the same seeds give the same behaviours and the same grouping,
// run after run; one seed gives the same trace every time; and a race that depends on the
// interleaving shows up as seeds that behaved differently.

import { describe, expect, it } from "vitest";
import { run_scenario, sweep_seeds } from "../../tools/scenarios/runner.ts";
import { load_scenario, seed_ranges, sweep_lines, namespace_filter } from "../../tools/scenarios/commands.ts";
import { find_scenario } from "../../tools/scenarios/builtin/index.ts";

const RACE = "tools/scenarios/examples/migrate_vs_cpu_race.ts";

describe("seed sweeps", () => {
  it("are deterministic and group seeds by behaviour", async () => {
    const s = await load_scenario(RACE);
    const seeds = Array.from({ length: 16 }, (_, i) => i);
    const a = await sweep_seeds(s, seeds);
    const b = await sweep_seeds(s, seeds);
    expect(b).toEqual(a);
    // This race has two outcomes among these seeds (see the scenario's comment).
    expect(a.groups.length).toBeGreaterThanOrEqual(2);
    expect(a.groups.flatMap((g) => g.seeds).sort((x, y) => x - y)).toEqual(seeds);
    expect(a.groups[1]!.difference).toMatch(/^value: /);
    expect(sweep_lines(s, a)[0]).toBe(`${s.name}: 16 seeds, ${a.groups.length} distinct behaviours`);
  }, 120_000);

  it("one seed gives the same trace, byte for byte", async () => {
    const s = find_scenario("fork-cow")!;
    const a = await run_scenario(s, { seed: 7 });
    const b = await run_scenario(s, { seed: 7 });
    expect(b.trace_text).toBe(a.trace_text);
    expect(JSON.stringify(b.perfetto)).toBe(JSON.stringify(a.perfetto));
  }, 60_000);

  it("helpers: seed ranges and debug-namespace filters", () => {
    expect(seed_ranges([0, 1, 2, 5, 7, 8])).toBe("0-2, 5, 7-8");
    const f = namespace_filter("kemu:*,-kemu:kunit");
    expect(f("kemu:kernel")).toBe(true);
    expect(f("kemu:kunit")).toBe(false);
    expect(namespace_filter("kemu:kfd*")("kemu:amdgpu")).toBe(false);
  });
});
