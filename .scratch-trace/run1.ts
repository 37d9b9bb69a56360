import s from "../tools/scenarios/builtin/dmirror_migrate.ts";
import { run_scenario } from "../tools/scenarios/runner.ts";
const t0 = performance.now();
const r = await run_scenario(s, { seed: 0 });
console.log(r.trace_text.split("\n").slice(0, 200).join("\n"));
console.log({ ok: r.ok, error: r.error, checks: r.checks, problems: r.problems, chain_missing: r.chain_missing, splats: r.splats, ms: performance.now() - t0, ncalls: r.calls.length });
