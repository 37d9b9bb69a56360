// Runs every KUnit suite under vitest: one describe per suite, one test per case (per parameter
// for parameterised cases). suite_init/suite_exit run once per suite as in the kernel; a failing
// case fails with its KUnit diagnostics, a skipped one is skipped with its reason. KEMU_SEED
// replaces every machine's seed, to explore other interleavings.

import { afterAll, beforeAll, describe, it, type TestContext } from "vitest";
import { kunit_run_one, kunit_suite_exit, kunit_suite_init } from "../lib/kunit/executor.ts";
import type { kunit_case, kunit_param } from "../lib/kunit/test.ts";
import { all_suites } from "./kunit/index.ts";

/** Host milliseconds one case may take (it boots its own machine). */
const CASE_TIMEOUT_MS = 120_000;
const seed = process.env.KEMU_SEED === undefined ? undefined : Number(process.env.KEMU_SEED);

function params_of(tcase: kunit_case): kunit_param[] | Error {
  try {
    return tcase.generate_params!();
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

for (const suite of all_suites()) {
  describe(suite.name, () => {
    let init: { err: number; log: string[] } = { err: 0, log: [] };
    beforeAll(async () => {
      init = await kunit_suite_init(suite);
    });
    afterAll(async () => {
      const log = await kunit_suite_exit(suite);
      if (log.length) throw new Error(log.join("\n"));
    });

    const run = (tcase: kunit_case, param: kunit_param | null, index: number) => async (ctx: TestContext) => {
      if (init.err) throw new Error(`suite ${suite.name}: ${init.log.join("\n")}`);
      const r = await kunit_run_one(suite, tcase, param, index, { seed });
      if (r.status === "failure") throw new Error(`${suite.name}.${tcase.name}${param ? ` [${r.name}]` : ""} failed:\n${r.log.join("\n")}`);
      if (r.status === "skipped") ctx.skip(r.status_comment);
    };

    for (const tcase of suite.test_cases) {
      if (!tcase.generate_params) {
        it(tcase.name, run(tcase, null, 0), CASE_TIMEOUT_MS);
        continue;
      }
      const params = params_of(tcase);
      describe(tcase.name, () => {
        if (params instanceof Error) {
          it("generate_params", () => {
            throw params;
          });
          return;
        }
        params.forEach((p, i) => it(p.desc ?? `param-${i}`, run(tcase, p, i), CASE_TIMEOUT_MS));
      });
    }
  });
}
