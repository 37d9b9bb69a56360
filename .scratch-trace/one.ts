import { builtin_scenarios } from "../tools/scenarios/builtin/index.ts";
import { run_scenario } from "../tools/scenarios/runner.ts";
for (const s of builtin_scenarios) {
  const t0 = performance.now();
  const r = await run_scenario(s, { seed: 0 });
  console.log(s.name, r.ok, r.error, r.chain_missing, r.checks, Math.round(performance.now() - t0));
}
