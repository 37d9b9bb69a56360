// KUnit suite for include/linux/atomic.ts: the arithmetic, test and conditional operations of
// atomic_t (32-bit int wrap-around) and atomic64_t (values past 2^32).

import {
  atomic64_t, atomic64_add_return, atomic64_cmpxchg, atomic64_dec_and_test, atomic64_inc, atomic64_read,
  atomic64_fetch_add, atomic_t, atomic_add_negative, atomic_add_unless, atomic_cmpxchg, atomic_dec_and_test,
  atomic_dec_if_positive, atomic_dec_return, atomic_fetch_add, atomic_fetch_andnot, atomic_fetch_or, atomic_inc,
  atomic_inc_not_zero, atomic_inc_return, atomic_read, atomic_set, atomic_sub_and_test, atomic_xchg,
} from "../../../../include/linux/atomic.ts";
import { KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite } from "../../../../lib/kunit/test.ts";

function arithmetic_and_return_values(test: kunit): void {
  const v = new atomic_t(5);
  atomic_inc(v);
  KUNIT_EXPECT_EQ(test, atomic_read(v), 6);
  KUNIT_EXPECT_EQ(test, atomic_inc_return(v), 7);
  KUNIT_EXPECT_EQ(test, atomic_dec_return(v), 6);
  KUNIT_EXPECT_EQ(test, atomic_fetch_add(4, v), 6, "fetch_ returns the old value");
  KUNIT_EXPECT_EQ(test, atomic_read(v), 10);
  KUNIT_EXPECT_EQ(test, atomic_xchg(v, 3), 10);
  KUNIT_EXPECT_EQ(test, atomic_fetch_or(0x10, v), 3);
  KUNIT_EXPECT_EQ(test, atomic_fetch_andnot(0x1, v), 0x13);
  KUNIT_EXPECT_EQ(test, atomic_read(v), 0x12);
}

function int_wraps_around(test: kunit): void {
  const v = new atomic_t(0x7fffffff);
  KUNIT_EXPECT_EQ(test, atomic_inc_return(v), -0x80000000);
  atomic_set(v, 0xffffffff);
  KUNIT_EXPECT_EQ(test, atomic_read(v), -1, "atomic_set stores an int");
  KUNIT_EXPECT_TRUE(test, atomic_add_negative(0, v));
}

function tests_and_conditionals(test: kunit): void {
  const v = new atomic_t(2);
  KUNIT_EXPECT_FALSE(test, atomic_dec_and_test(v));
  KUNIT_EXPECT_TRUE(test, atomic_dec_and_test(v));
  KUNIT_EXPECT_FALSE(test, atomic_inc_not_zero(v), "zero stays zero");
  KUNIT_EXPECT_EQ(test, atomic_read(v), 0);
  KUNIT_EXPECT_EQ(test, atomic_dec_if_positive(v), -1);
  KUNIT_EXPECT_EQ(test, atomic_read(v), 0, "not decremented below zero");
  KUNIT_EXPECT_TRUE(test, atomic_add_unless(v, 5, 1));
  KUNIT_EXPECT_FALSE(test, atomic_add_unless(v, 5, 5));
  KUNIT_EXPECT_EQ(test, atomic_read(v), 5);
  KUNIT_EXPECT_EQ(test, atomic_cmpxchg(v, 4, 9), 5, "mismatch: unchanged, returns current");
  KUNIT_EXPECT_EQ(test, atomic_cmpxchg(v, 5, 9), 5);
  KUNIT_EXPECT_EQ(test, atomic_read(v), 9);
  KUNIT_EXPECT_TRUE(test, atomic_sub_and_test(9, v));
}

function atomic64_holds_large_values(test: kunit): void {
  const v = new atomic64_t(2 ** 40);
  atomic64_inc(v);
  KUNIT_EXPECT_EQ(test, atomic64_read(v), 2 ** 40 + 1);
  KUNIT_EXPECT_EQ(test, atomic64_add_return(2 ** 33, v), 2 ** 40 + 2 ** 33 + 1);
  KUNIT_EXPECT_EQ(test, atomic64_fetch_add(-(2 ** 40 + 2 ** 33), v), 2 ** 40 + 2 ** 33 + 1);
  KUNIT_EXPECT_EQ(test, atomic64_cmpxchg(v, 1, 2 ** 50), 1);
  KUNIT_EXPECT_EQ(test, atomic64_read(v), 2 ** 50);
  KUNIT_EXPECT_FALSE(test, atomic64_dec_and_test(v));
}

export const atomic_test_suite: kunit_suite = {
  name: "atomic",
  test_cases: [
    KUNIT_CASE(arithmetic_and_return_values),
    KUNIT_CASE(int_wraps_around),
    KUNIT_CASE(tests_and_conditionals),
    KUNIT_CASE(atomic64_holds_large_values),
  ],
};
