import { builtin_scenarios } from "../tools/scenarios/builtin/index.ts";
import { run_scenario } from "../tools/scenarios/runner.ts";
const only = process.argv[2];
for (const s of builtin_scenarios) {
  if (only && s.name !== only) continue;
  const t0 = performance.now();
  const r = await run_scenario(s, { seed: 0 });
  if (only) console.log(r.trace_text);
  console.log(s.name, { ok: r.ok, error: r.error, checks: r.checks, problems: r.problems, chain_missing: r.chain_missing, splats: r.splats, ms: Math.round(performance.now() - t0), ncalls: r.calls.length, lines: r.trace_text.split("\n").length });
}
