// Runs every selftest program under vitest: one describe per program ("dir/name"), one test per
// fixture/variant/test instance. A failing selftest fails with everything it printed; a skipped
// one is skipped with its reason; XFAIL/XPASS count as passed, as in the kselftest harness.

import { describe, it } from "vitest";
import { KSFT_SKIP, TEST_TIMEOUT_DEFAULT } from "../tools/testing/selftests/kselftest_harness.ts";
import { all_selftests } from "./selftests/index.ts";

const seed = process.env.KEMU_SEED === undefined ? undefined : Number(process.env.KEMU_SEED);

for (const program of all_selftests()) {
  describe(`${program.dir}/${program.name}`, () => {
    for (const inst of program.instances()) {
      // The harness enforces the test's own timeout; vitest's is a backstop above it.
      const timeout_ms = ((inst.test.opts.timeout ?? TEST_TIMEOUT_DEFAULT) + 30) * 1000;
      it(inst.fullName, async (ctx) => {
        const r = await program.runTest(inst, { write: () => {}, seed });
        if (!r.passed) throw new Error(r.output.join("\n"));
        if (r.exitCode === KSFT_SKIP) ctx.skip(r.reason);
      }, timeout_ms);
    }
  });
}
