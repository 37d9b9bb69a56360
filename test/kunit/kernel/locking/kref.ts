// KUnit suite for include/linux/kref.ts: release on the last put, get_unless_zero on a dying
// object, the refcount_t saturation WARNs on use after free, and kref_put_mutex().

import {
  REFCOUNT_SATURATED, kref, kref_get, kref_get_unless_zero, kref_init, kref_put, kref_put_mutex, kref_read,
} from "../../../../include/linux/kref.ts";
import { mutex, mutex_is_locked, mutex_unlock } from "../../../../kernel/locking/mutex.ts";
import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE, kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";

function release_on_last_put(test: kunit): void {
  const r = new kref(test.k);
  let released = 0;
  const release = () => {
    released++;
  };
  kref_get(r);
  KUNIT_EXPECT_EQ(test, kref_read(r), 2);
  KUNIT_EXPECT_EQ(test, kref_put(r, release), 0);
  KUNIT_EXPECT_EQ(test, released, 0);
  KUNIT_EXPECT_EQ(test, kref_put(r, release), 1);
  KUNIT_EXPECT_EQ(test, released, 1);
  KUNIT_EXPECT_EQ(test, kref_get_unless_zero(r), 0, "a dying object gives no new reference");
  kref_init(r);
  KUNIT_EXPECT_EQ(test, kref_get_unless_zero(r), 1);
  KUNIT_EXPECT_EQ(test, kref_read(r), 2);
  KUNIT_EXPECT_EQ(test, test.k.splats.length, 0);
}

function use_after_free_saturates(test: kunit): void {
  kunit_expect_splat(test, "warn");
  const r = new kref(test.k);
  let released = 0;
  kref_put(r, () => released++);
  kref_get(r); // use after free
  KUNIT_EXPECT_EQ(test, kref_read(r), REFCOUNT_SATURATED);
  KUNIT_EXPECT_EQ(test, kref_put(r, () => released++), 0, "a saturated count never releases again");
  KUNIT_EXPECT_EQ(test, released, 1);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("refcount_t: addition on 0; use-after-free.")));
  KUNIT_EXPECT_EQ(test, test.k.splats.filter((s) => s.kind === "warn").length, 1);
}

function put_below_zero_warns(test: kunit): void {
  kunit_expect_splat(test, "warn");
  const r = new kref(test.k);
  r.refs = 0;
  KUNIT_EXPECT_EQ(test, kref_put(r, () => undefined), 0);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("refcount_t: underflow; use-after-free.")));
}

async function put_mutex_releases_under_the_lock(test: kunit): Promise<void> {
  const r = new kref(test.k);
  const m = new mutex(test.k, "&list_mutex");
  let locked_in_release = false;
  kref_get(r);
  KUNIT_EXPECT_EQ(test, await kref_put_mutex(r, () => undefined, m), 0);
  KUNIT_EXPECT_FALSE(test, mutex_is_locked(m), "not the last reference: the lock is not taken");
  KUNIT_EXPECT_EQ(test, await kref_put_mutex(r, () => {
    locked_in_release = mutex_is_locked(m);
    mutex_unlock(m);
  }, m), 1);
  KUNIT_EXPECT_TRUE(test, locked_in_release);
  KUNIT_EXPECT_FALSE(test, mutex_is_locked(m));
}

export const kref_test_suite: kunit_suite = {
  name: "kref",
  test_cases: [
    KUNIT_CASE(release_on_last_put),
    KUNIT_CASE(use_after_free_saturates),
    KUNIT_CASE(put_below_zero_warns),
    KUNIT_CASE(put_mutex_releases_under_the_lock),
  ],
};
