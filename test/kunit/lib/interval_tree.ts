// KUnit suite for lib/interval_tree.ts, in the spirit of lib/interval_tree_test.c: random
// inserts and removals checked against a brute-force list, plus the iteration contract.

import {
  interval_tree_node, rb_root_cached, interval_tree_insert, interval_tree_remove, interval_tree_iter_first,
  interval_tree_iter_next, interval_tree_for_each,
} from "../../../lib/interval_tree.ts";
import { prandom_seed_state, prandom_u32_below } from "../../../lib/random32.ts";
import { KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_NULL, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite } from "../../../lib/kunit/test.ts";

function overlapping(all: interval_tree_node[], start: number, last: number): interval_tree_node[] {
  return all.filter((n) => n.start <= last && start <= n.last).sort((a, b) => a.start - b.start);
}

function random_ops_match_brute_force(test: kunit): void {
  const rnd = prandom_seed_state(42);
  const root = new rb_root_cached();
  const all: interval_tree_node[] = [];
  let mismatches = 0;
  for (let i = 0; i < 3000; i++) {
    if (all.length && prandom_u32_below(rnd, 10) < 4) {
      const [n] = all.splice(prandom_u32_below(rnd, all.length), 1);
      interval_tree_remove(n!, root);
    } else {
      const s = prandom_u32_below(rnd, 2 ** 20) * 4096;
      const n = new interval_tree_node(s, s + prandom_u32_below(rnd, 64) * 4096 + 4095);
      interval_tree_insert(n, root);
      all.push(n);
    }
    const qs = prandom_u32_below(rnd, 2 ** 20) * 4096;
    const ql = qs + prandom_u32_below(rnd, 256) * 4096;
    const got = [...interval_tree_for_each(root, qs, ql)];
    const want = overlapping(all, qs, ql);
    if (got.length !== want.length || got.some((g, j) => g.start !== want[j]!.start)) mismatches++;
  }
  KUNIT_EXPECT_EQ(test, mismatches, 0);
  KUNIT_EXPECT_EQ(test, root.count, all.length);
}

function iteration_is_in_start_order_and_pruned(test: kunit): void {
  const root = new rb_root_cached();
  const spans = [[0, 9], [10, 19], [5, 100], [200, 300], [50, 60]] as const;
  for (const [s, l] of spans) interval_tree_insert(new interval_tree_node(s, l), root);
  const hits = [...interval_tree_for_each(root, 15, 55)].map((n) => `${n.start}-${n.last}`);
  KUNIT_EXPECT_EQ(test, hits.join(","), "5-100,10-19,50-60");
  KUNIT_EXPECT_NULL(test, interval_tree_iter_first(root, 101, 199));
  const first = interval_tree_iter_first(root, 250, 250)!;
  KUNIT_EXPECT_EQ(test, first.start, 200);
  KUNIT_EXPECT_NULL(test, interval_tree_iter_next(first, 250, 250));
}

function addresses_above_2_pow_32(test: kunit): void {
  const root = new rb_root_cached();
  const base = 2 ** 46;
  const n = new interval_tree_node(base, base + 2 ** 33);
  interval_tree_insert(n, root);
  KUNIT_EXPECT_TRUE(test, interval_tree_iter_first(root, base + 2 ** 32, base + 2 ** 32) === n);
  interval_tree_remove(n, root);
  KUNIT_EXPECT_NULL(test, interval_tree_iter_first(root, 0, 2 ** 50));
}

export const interval_tree_test_suite: kunit_suite = {
  name: "interval_tree",
  test_cases: [
    KUNIT_CASE(random_ops_match_brute_force),
    KUNIT_CASE(iteration_is_in_start_order_and_pruned),
    KUNIT_CASE(addresses_above_2_pow_32),
  ],
};
