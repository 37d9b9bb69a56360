// Tests of the self-test harness itself: the KTAP, summary and TAP printers against the reference
// documents of ../shared/reference/iommu-and-selftests.md §2, the KTAP parser, glob matching,
// the KUnit executor's statuses and filters, and the kselftest harness and runner.

import { describe, expect, it } from "vitest";
import { MINIMAL_MACHINE } from "../../kernel/machine_spec.ts";
import { glob_match } from "../../lib/glob.ts";
import {
  kunit_all_cases, kunit_filter_suites, kunit_list_tests, kunit_run_all_tests, kunit_run_tests,
} from "../../lib/kunit/executor.ts";
import {
  ktap_count, ktap_tree_from_run, kunit_render_json, kunit_render_ktap, kunit_render_summary,
  type kunit_run_result,
} from "../../lib/kunit/ktap.ts";
import {
  KUNIT_ARRAY_PARAM, KUNIT_ASSERT_EQ, KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_CASE_SLOW, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE,
  kunit_add_action, kunit_expect_splat, kunit_skip, type kunit, type kunit_suite,
} from "../../lib/kunit/test.ts";
import { ktapFailed, parseKtap } from "../../tools/testing/kunit/kunit_parser.ts";
import { runMany } from "../../tools/testing/selftests/kselftest/runner.ts";
import {
  ASSERT_EQ, EXPECT_EQ, FIXTURE, FIXTURE_VARIANT_ADD, KSFT_FAIL, KSFT_PASS, SKIP, TEST, TEST_F, XFAIL_ADD, kselftest,
} from "../../tools/testing/selftests/kselftest_harness.ts";

const lines = (...l: string[]) => l.join("\n") + "\n";

// ---- the reference run of §2.2 "Exact raw output (6.x)" --------------------------------------

const REFERENCE_RUN: kunit_run_result = {
  suites: [
    {
      name: "amd_iommu_v2_ppr", module: "emu_iommu", status: "failure", status_comment: "", suite_init_err: 0, log: [],
      cases: [
        { name: "ppr_single_fault_success", status: "success", status_comment: "", log: [], params: null },
        {
          name: "ppr_access_error_invalid", status: "failure", status_comment: "", params: null,
          log: [
            "# ppr_access_error_invalid: EXPECTATION FAILED at emu/iommu/ppr.test.ts:88",
            "Expected resp.status == PPR_INVALID, but",
            "    resp.status == 0 (0x0)",
            "    PPR_INVALID == 1 (0x1)",
          ],
        },
        {
          name: "ppr_tag_decode", status: "success", status_comment: "", log: [],
          params: [
            { name: "tag=0x000 last=0", status: "success", status_comment: "", log: [] },
            { name: "tag=0x1ff last=1", status: "success", status_comment: "", log: [] },
            { name: "tag=0x0a5 last=1", status: "skipped", status_comment: "GN not modelled", log: [] },
          ],
        },
        { name: "ppr_oom_resends_success", status: "success", status_comment: "", log: [], speed: "slow", params: null },
      ],
    },
    {
      name: "kfd_iommu", status: "success", status_comment: "", suite_init_err: 0, log: [],
      cases: [{ name: "bind_unbind_roundtrip", status: "success", status_comment: "", log: [], params: null }],
    },
  ],
};

const REFERENCE_KTAP = lines(
  "KTAP version 1",
  "1..2",
  "    KTAP version 1",
  "    # Subtest: amd_iommu_v2_ppr",
  "    # module: emu_iommu",
  "    1..4",
  "    ok 1 ppr_single_fault_success",
  "    # ppr_access_error_invalid: EXPECTATION FAILED at emu/iommu/ppr.test.ts:88",
  "    Expected resp.status == PPR_INVALID, but",
  "        resp.status == 0 (0x0)",
  "        PPR_INVALID == 1 (0x1)",
  "    not ok 2 ppr_access_error_invalid",
  "        KTAP version 1",
  "        # Subtest: ppr_tag_decode",
  "        ok 1 tag=0x000 last=0",
  "        ok 2 tag=0x1ff last=1",
  "        ok 3 tag=0x0a5 last=1 # SKIP GN not modelled",
  "    # ppr_tag_decode: pass:2 fail:0 skip:1 total:3",
  "    ok 3 ppr_tag_decode",
  "    # ppr_oom_resends_success.speed: slow",
  "    ok 4 ppr_oom_resends_success",
  "    # amd_iommu_v2_ppr: pass:3 fail:1 skip:0 total:4",
  "    # Totals: pass:4 fail:1 skip:1 total:6",
  "not ok 1 amd_iommu_v2_ppr",
  "    KTAP version 1",
  "    # Subtest: kfd_iommu",
  "    1..1",
  "    ok 1 bind_unbind_roundtrip",
  "ok 2 kfd_iommu",
);

describe("KTAP printer", () => {
  it("prints the reference KUnit document exactly", () => {
    expect(kunit_render_ktap(REFERENCE_RUN)).toBe(REFERENCE_KTAP);
  });

  it("prints a suite_init failure without a header, and an all-skipped suite as SKIP", () => {
    const run: kunit_run_result = {
      suites: [
        { name: "broken", status: "failure", status_comment: "", suite_init_err: -19, log: ["# failed to initialize (-19)"], cases: [] },
        {
          name: "quiet", status: "skipped", status_comment: "", suite_init_err: 0, log: [],
          cases: [{ name: "nothing", status: "skipped", status_comment: "no device", log: [], params: null }],
        },
      ],
    };
    expect(kunit_render_ktap(run)).toBe(lines(
      "KTAP version 1",
      "1..2",
      "    # failed to initialize (-19)",
      "not ok 1 broken",
      "    KTAP version 1",
      "    # Subtest: quiet",
      "    1..1",
      "    ok 1 nothing # SKIP no device",
      "ok 2 quiet # SKIP",
    ));
  });
});

describe("kunit.py summary printer", () => {
  it("prints the reference run like kunit.py", () => {
    const t = "[00:00:00] ";
    expect(kunit_render_summary(ktap_tree_from_run(REFERENCE_RUN))).toBe(lines(
      t + "=".repeat(60),
      t + "============== amd_iommu_v2_ppr (4 subtests) ===============",
      t + "[PASSED] ppr_single_fault_success",
      t + "# ppr_access_error_invalid: EXPECTATION FAILED at emu/iommu/ppr.test.ts:88",
      t + "Expected resp.status == PPR_INVALID, but",
      t + "    resp.status == 0 (0x0)",
      t + "    PPR_INVALID == 1 (0x1)",
      t + "[FAILED] ppr_access_error_invalid",
      t + "===================== ppr_tag_decode  ======================",
      t + "[PASSED] tag=0x000 last=0",
      t + "[PASSED] tag=0x1ff last=1",
      t + "[SKIPPED] tag=0x0a5 last=1: GN not modelled",
      t + "================= [PASSED] ppr_tag_decode ==================",
      t + "[PASSED] ppr_oom_resends_success",
      t + "================ [FAILED] amd_iommu_v2_ppr =================",
      t + "================== kfd_iommu (1 subtest) ===================",
      t + "[PASSED] bind_unbind_roundtrip",
      t + "==================== [PASSED] kfd_iommu ====================",
      t + "=".repeat(60),
      t + "Testing complete. Ran 7 tests: passed: 5, failed: 1, skipped: 1",
    ));
  });

  it("stamps lines with the elapsed time as [HH:MM:SS]", () => {
    const text = kunit_render_summary(ktap_tree_from_run({ suites: [] }), { now: () => 3_723_000 });
    expect(text.split("\n")[0]).toBe(`[01:02:03] ${"=".repeat(60)}`);
  });

  it("writes kunit.py JSON", () => {
    const json = JSON.parse(kunit_render_json(ktap_tree_from_run(REFERENCE_RUN)));
    expect(json.name).toBe("KUnit Test Group");
    expect(json.sub_groups[0].name).toBe("amd_iommu_v2_ppr");
    expect(json.sub_groups[0].test_cases[1]).toEqual({ name: "ppr_access_error_invalid", status: "FAIL" });
    expect(json.sub_groups[0].sub_groups[0].test_cases[2]).toEqual({ name: "tag=0x0a5 last=1", status: "SKIP" });
    expect(json.misc).toEqual({ tests: 7, passed: 5, failed: 1, crashed: 0, skipped: 1, errors: 0 });
  });
});

describe("KTAP parser", () => {
  it("reads back the reference KUnit document", () => {
    const root = parseKtap(REFERENCE_KTAP);
    expect(root.status).toBe("failure");
    expect(root.subtests!.map((s) => [s.name, s.status])).toEqual([["amd_iommu_v2_ppr", "failure"], ["kfd_iommu", "success"]]);
    const ppr = root.subtests![0]!;
    expect(ppr.expected_count).toBe(4);
    expect(ppr.subtests![1]!.log).toEqual(REFERENCE_RUN.suites[0]!.cases[1]!.log);
    expect(ppr.subtests![2]!.subtests!.map((p) => p.status)).toEqual(["success", "success", "skipped"]);
    expect(ppr.subtests![2]!.subtests![2]!.comment).toBe("GN not modelled");
    expect(ppr.errors).toEqual([]);
    expect(ktap_count(root)).toEqual({ passed: 5, failed: 1, crashed: 0, skipped: 1, errors: 0 });
    expect(kunit_render_summary(root)).toBe(kunit_render_summary(ktap_tree_from_run(REFERENCE_RUN)));
  });

  it("reads the KTAP spec's 2-space example with directives", () => {
    const root = parseKtap(lines(
      "KTAP version 1",
      "1..2",
      "  KTAP version 1",
      "  1..3",
      "  ok 1 bind_pasid_sets_gcr3",
      "  # ppr_oom_path: inflight=1 finish=1 status=0x0",
      "  ok 2 ppr_oom_path",
      "  not ok 3 ppr_unknown_device_gets_response # TIMEOUT 5 seconds",
      "# iommu_v2: 1 of 3 subtests failed",
      "not ok 1 iommu_v2",
      "ok 2 kfd_iommu_bind # SKIP no APU topology node",
    ));
    const [v2, bind] = root.subtests!;
    expect(v2!.subtests!.map((t) => t.status)).toEqual(["success", "success", "failure"]);
    expect(v2!.subtests![1]!.log).toEqual(["# ppr_oom_path: inflight=1 finish=1 status=0x0"]);
    expect(v2!.subtests![2]!.directive).toBe("TIMEOUT");
    expect(v2!.log).toEqual(["# iommu_v2: 1 of 3 subtests failed"]);
    expect(bind!.status).toBe("skipped");
    expect(bind!.comment).toBe("no APU topology node");
    expect(ktapFailed(root)).toBe(true);
  });

  it("strips a dmesg prefix and reports missing results", () => {
    const root = parseKtap(lines(
      "[    0.100000] random boot noise",
      "[    0.200000] KTAP version 1",
      "[    0.200001] 1..2",
      "[    0.200002] ok 1 first",
    ));
    expect(root.subtests!.map((t) => t.status)).toEqual(["success", "crashed"]);
    expect(ktapFailed(root)).toBe(true);
  });

  it("reports input without KTAP", () => {
    const root = parseKtap("nothing here\n");
    expect(root.errors[0]).toMatch(/Could not find any KTAP output/);
    expect(ktapFailed(root)).toBe(true);
  });
});

describe("glob_match", () => {
  it.each([
    ["*", "anything", true],
    ["lock*", "lockdep", true],
    ["lock*", "mutex", false],
    ["*dep*", "lockdep_irq", true],
    ["m?tex", "mutex", true],
    ["[a-c]at", "bat", true],
    ["[!a-c]at", "bat", false],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "aXbY", false],
    ["", "", true],
  ])("%s vs %s", (pat, str, want) => {
    expect(glob_match(pat, str)).toBe(want);
  });
});

// ---- the executor, on tiny suites ------------------------------------------------------------

const order: string[] = [];

const statuses: kunit_suite = {
  name: "exec_statuses",
  machine: MINIMAL_MACHINE,
  exit: () => {
    order.push("exit");
  },
  test_cases: [
    KUNIT_CASE(function expect_continues(test: kunit) {
      KUNIT_EXPECT_EQ(test, 1, 2);
      KUNIT_EXPECT_TRUE(test, true);
      order.push("after expect");
    }),
    KUNIT_CASE(function assert_aborts(test: kunit) {
      KUNIT_ASSERT_EQ(test, 3, 4);
      order.push("after assert");
    }),
    KUNIT_CASE(function skips(test: kunit) {
      kunit_skip(test, "not today");
    }),
    KUNIT_CASE(function throws(_test: kunit) {
      throw new TypeError("boom");
    }),
    KUNIT_CASE(function actions_in_reverse(test: kunit) {
      kunit_add_action(test, () => void order.push("action 1"));
      kunit_add_action(test, () => void order.push("action 2"));
    }),
    KUNIT_CASE(function unexpected_warn(test: kunit) {
      test.k.WARN_ON(true, "kunit harness test warning");
    }),
    KUNIT_CASE(function expected_warn(test: kunit) {
      kunit_expect_splat(test, "warn");
      test.k.WARN_ON(true, "kunit harness test warning");
    }),
    KUNIT_CASE_PARAM(function param_case(test: kunit) {
      KUNIT_EXPECT_EQ(test, (test.param_value as number) % 2, 0);
    }, KUNIT_ARRAY_PARAM([0, 1, 2], (v) => `value ${v}`)),
    KUNIT_CASE_SLOW(function slow_case(test: kunit) {
      KUNIT_EXPECT_EQ(test, test.k.ktime_get() >= 0, true);
    }),
  ],
};

const init_fails: kunit_suite = {
  name: "exec_init_fails",
  machine: MINIMAL_MACHINE,
  init: () => -12,
  exit: () => {
    order.push("exit after failed init");
  },
  test_cases: [KUNIT_CASE(function never_runs(_test: kunit) {
    order.push("body after failed init");
  })],
};

const suite_init_fails: kunit_suite = {
  name: "exec_suite_init_fails",
  suite_init: () => -19,
  suite_exit: () => {
    order.push("suite_exit");
  },
  test_cases: [KUNIT_CASE(function never_runs(_test: kunit) {})],
};

describe("KUnit executor", () => {
  it("gives each case the kernel's status and diagnostics", async () => {
    order.length = 0;
    const run = await kunit_run_all_tests(kunit_all_cases([statuses]));
    const s = run.suites[0]!;
    const by = Object.fromEntries(s.cases.map((c) => [c.name, c]));
    expect(s.status).toBe("failure");

    expect(by.expect_continues!.status).toBe("failure");
    expect(by.expect_continues!.log[0]).toMatch(/^# expect_continues: EXPECTATION FAILED at test\/harness\/ktap\.test\.ts:\d+$/);
    expect(by.assert_aborts!.status).toBe("failure");
    expect(by.assert_aborts!.log[0]).toMatch(/^# assert_aborts: ASSERTION FAILED at /);
    expect(order).toContain("after expect");
    expect(order).not.toContain("after assert");

    expect(by.skips!.status).toBe("skipped");
    expect(by.skips!.status_comment).toBe("not today");

    expect(by.throws!.status).toBe("failure");
    expect(by.throws!.log.join("\n")).toMatch(/# throws: try faulted/);
    expect(by.throws!.log.join("\n")).toMatch(/TypeError: boom/);

    expect(order.slice(order.indexOf("action 2") - 1, order.indexOf("action 1") + 1)).toEqual(["exit", "action 2", "action 1"]);

    expect(by.unexpected_warn!.status).toBe("failure");
    expect(by.unexpected_warn!.log.join("\n")).toMatch(/# unexpected_warn: shutdown: unexpected warn splat/);
    expect(by.expected_warn!.status).toBe("success");

    expect(by.param_case!.status).toBe("failure");
    expect(by.param_case!.params!.map((p) => [p.name, p.status])).toEqual([
      ["value 0", "success"], ["value 1", "failure"], ["value 2", "success"],
    ]);
    expect(by.slow_case!.speed).toBe("slow");

    const ktap = kunit_render_ktap(run);
    expect(ktap).toContain("        not ok 2 value 1\n");
    expect(ktap).toContain("    # param_case: pass:2 fail:1 skip:0 total:3\n");
    expect(ktap).toContain("    ok 3 skips # SKIP not today\n");
    expect(ktap).toContain("    # slow_case.speed: slow\n    ok 9 slow_case\n");
    expect(ktap).toContain("    # exec_statuses: pass:3 fail:5 skip:1 total:9\n");
    expect(ktap).toContain("    # Totals: pass:5 fail:5 skip:1 total:11\n");
  }, 60_000);

  it("fails a case whose init fails, and still runs exit", async () => {
    order.length = 0;
    const s = await kunit_run_tests(kunit_all_cases([init_fails])[0]!, 1);
    expect(s.cases[0]!.status).toBe("failure");
    expect(s.cases[0]!.log).toEqual(["# never_runs: failed to initialize: -12"]);
    expect(order).toEqual(["exit after failed init"]);
  });

  it("fails a suite whose suite_init fails without running its cases", async () => {
    order.length = 0;
    const run = await kunit_run_all_tests(kunit_all_cases([suite_init_fails]));
    const s = run.suites[0]!;
    expect(s.status).toBe("failure");
    expect(s.suite_init_err).toBe(-19);
    expect(s.cases).toEqual([]);
    expect(order).toEqual(["suite_exit"]);
    expect(kunit_render_ktap(run)).toBe(lines("KTAP version 1", "1..1", "    # failed to initialize (-19)", "not ok 1 exec_suite_init_fails"));
  });

  it("filters by glob and attributes, and lists", () => {
    const all = [statuses, init_fails, suite_init_fails];
    const byGlob = kunit_filter_suites(all, { filter_glob: "exec_s*.*_case" });
    expect(typeof byGlob).not.toBe("string");
    if (typeof byGlob === "string") return;
    expect(byGlob.map((s) => [s.suite.name, s.cases.map((c) => c.tcase.name)])).toEqual([["exec_statuses", ["param_case", "slow_case"]]]);

    const slow = kunit_filter_suites(all, { filter: "speed>normal" });
    if (typeof slow === "string") throw new Error(slow);
    expect(slow.map((s) => s.cases.map((c) => c.tcase.name))).toEqual([["slow_case"]]);

    const skipped = kunit_filter_suites([statuses], { filter: "speed>normal", filter_action: "skip" });
    if (typeof skipped === "string") throw new Error(skipped);
    expect(skipped[0]!.cases.filter((c) => c.filtered_out).length).toBe(8);

    expect(kunit_filter_suites(all, { filter: "speed~slow" })).toBe("kunit executor: filter operation not found: speed~slow");
    expect(kunit_filter_suites(all, { filter: "color=red" })).toBe("kunit executor: filter attribute not found: color");
    expect(kunit_list_tests(kunit_all_cases([init_fails]), true)).toEqual([
      "KTAP version 1", "exec_init_fails.never_runs", "# never_runs.speed: normal",
    ]);
  });

  it("reports filter_action=skip cases as skipped without running them", async () => {
    const fs = kunit_filter_suites([statuses], { filter_glob: "exec_statuses.s*", filter: "speed>normal", filter_action: "skip" });
    if (typeof fs === "string") throw new Error(fs);
    const run = await kunit_run_all_tests(fs);
    expect(run.suites[0]!.cases.map((c) => [c.name, c.status])).toEqual([["skips", "skipped"], ["slow_case", "success"]]);
    expect(kunit_render_ktap(run)).toContain("    ok 1 skips # SKIP\n");
  });
});

// ---- the kselftest harness -----------------------------------------------------------------

/** The reference program of §2.3: one global test, a fixture with a variant, an assert, a skip. */
function referenceProgram() {
  const prog = kselftest("ppr_test", { machine: MINIMAL_MACHINE });
  TEST(prog, "flush_from_worker_rejected", () => {});
  const ppr = FIXTURE<{ status: number }, { levels: number }>(prog, "ppr", {
    setup: (self) => {
      self.status = 1;
    },
  });
  FIXTURE_VARIANT_ADD(ppr, "one_level", { levels: 1 });
  TEST_F(ppr, "bind_then_fault", (self) => {
    const status = self.status;
    ASSERT_EQ(0, status);
  });
  TEST_F(ppr, "gn_required", () => {
    SKIP("device model lacks PRG-response-PASID bit");
  });
  return prog;
}

const REFERENCE_TAP = lines(
  "TAP version 13",
  "1..3",
  "# Starting 3 tests from 2 test cases.",
  "#  RUN           global.flush_from_worker_rejected ...",
  "#            OK  global.flush_from_worker_rejected",
  "ok 1 global.flush_from_worker_rejected",
  "#  RUN           ppr.one_level.bind_then_fault ...",
  "# ppr_test.c:57:bind_then_fault:Expected 0 (0) == status (1)",
  "# bind_then_fault: Test terminated by assertion",
  "#          FAIL  ppr.one_level.bind_then_fault",
  "not ok 2 ppr.one_level.bind_then_fault",
  "#  RUN           ppr.one_level.gn_required ...",
  "#      SKIP      device model lacks PRG-response-PASID bit",
  "#            OK  ppr.one_level.gn_required",
  "ok 3 ppr.one_level.gn_required # SKIP device model lacks PRG-response-PASID bit",
  "# FAILED: 2 / 3 tests passed.",
  "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0",
);

/** Our file and line stand where the reference has ppr_test.c:57. */
const normalise = (text: string) => text.replace(/# ktap\.test\.ts:\d+:/g, "# ppr_test.c:57:");

describe("kselftest harness", () => {
  it("prints the reference TAP 13 document and exits 1", async () => {
    const out: string[] = [];
    const rc = await referenceProgram().main([], { write: (l) => out.push(l) });
    expect(normalise(lines(...out))).toBe(REFERENCE_TAP);
    expect(rc).toBe(KSFT_FAIL);
  }, 60_000);

  it("filters with -t/-T/-f/-v/-r and lists with -l", async () => {
    const names = async (argv: string[]) => {
      const out: string[] = [];
      await referenceProgram().main(argv, { write: (l) => out.push(l) });
      return out.filter((l) => l.startsWith("#  RUN")).map((l) => l.split(/\s+/)[2]);
    };
    expect(await names(["-t", "gn_required"])).toEqual(["ppr.one_level.gn_required"]);
    expect(await names(["-T", "bind_then_fault", "-f", "ppr"])).toEqual(["ppr.one_level.gn_required"]);
    expect(await names(["-r", "global.flush_from_worker_rejected"])).toEqual(["global.flush_from_worker_rejected"]);
    const listed: string[] = [];
    await referenceProgram().main(["-l"], { write: (l) => listed.push(l) });
    expect(listed[0]).toBe(`${"# FIXTURE".padEnd(20)} ${"VARIANT".padEnd(25)} TEST`);
  }, 60_000);

  it("maps XFAIL_ADD, EXPECT failures and machine leaks", async () => {
    const prog = kselftest("xfail_demo", { machine: MINIMAL_MACHINE });
    const f = FIXTURE(prog, "f");
    FIXTURE_VARIANT_ADD(f, "v", undefined);
    TEST_F(f, "expected_to_fail", () => {
      EXPECT_EQ(1, 2);
    });
    TEST_F(f, "warns", (_self, _v, _metadata) => {
      _metadata.machine.k.WARN_ON(true, "selftest warning");
    });
    XFAIL_ADD(f, "v", "expected_to_fail");
    const out: string[] = [];
    const rc = await prog.main([], { write: (l) => out.push(l) });
    expect(out).toContain("ok 1 f.v.expected_to_fail # XFAIL unknown");
    expect(out.some((l) => /^# warns: machine shutdown: unexpected warn splat/.test(l))).toBe(true);
    expect(out).toContain("not ok 2 f.v.warns");
    expect(out.at(-1)).toBe("# Totals: pass:0 fail:1 xfail:1 xpass:0 skip:0 error:0");
    expect(rc).toBe(KSFT_FAIL);
  }, 60_000);

  it("wraps programs like kselftest's runner.sh", async () => {
    const prog = kselftest("tiny", { machine: MINIMAL_MACHINE });
    prog.dir = "kernel";
    TEST(prog, "passes", () => {});
    const out: string[] = [];
    const r = await runMany([prog], { write: (l) => out.push(l) });
    expect(lines(...out)).toBe(lines(
      "TAP version 13",
      "1..1",
      "# selftests: kernel: tiny",
      "# TAP version 13",
      "# 1..1",
      "# # Starting 1 tests from 1 test cases.",
      "# #  RUN           global.passes ...",
      "# #            OK  global.passes",
      "# ok 1 global.passes",
      "# # PASSED: 1 / 1 tests passed.",
      "# # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0",
      "ok 1 selftests: kernel: tiny",
    ));
    expect(r.exitCode).toBe(KSFT_PASS);
  }, 60_000);
});
