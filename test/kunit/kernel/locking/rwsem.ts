// KUnit suite for kernel/locking/rwsem.ts: readers share, writers exclude, a waiting writer
// holds off new readers, downgrade_write lets readers in, trylocks, killable waits, and
// lockdep's view of read and write holds.

import {
  rw_semaphore, down_read, down_read_killable, down_read_trylock, down_write, down_write_killable,
  down_write_trylock, downgrade_write, lockdep_assert_held_read, lockdep_assert_held_write, rwsem_is_contended,
  rwsem_is_locked, up_read, up_write,
} from "../../../../kernel/locking/rwsem.ts";
import type { task_struct } from "../../../../kernel/sched/core.ts";
import { EINTR } from "../../../../include/uapi/asm-generic/errno.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE, kunit_expect_splat,
  type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";

async function until(test: kunit, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await test.k.msleep(1);
  KUNIT_ASSERT_TRUE(test, cond(), "condition never became true");
}

async function readers_share(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const sem = new rw_semaphore(k, "&mm->mmap_lock");
  let inside = 0;
  let most = 0;
  const reader = async () => {
    await down_read(sem);
    inside++;
    most = Math.max(most, inside);
    await k.msleep(5);
    inside--;
    up_read(sem);
  };
  await s.wait_for(Promise.all([1, 2, 3].map((i) => s.kthread_run(reader, `reader${i}`))));
  KUNIT_EXPECT_EQ(test, most, 3);
  KUNIT_EXPECT_FALSE(test, rwsem_is_locked(sem));
}

async function writer_excludes_everyone(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const sem = new rw_semaphore(k, "&sem");
  const log: string[] = [];
  await down_write(sem);
  lockdep_assert_held_write(sem);
  const r = s.kthread_run(async () => {
    await down_read(sem);
    log.push("reader");
    up_read(sem);
  }, "reader");
  const w = s.kthread_run(async () => {
    await down_write(sem);
    log.push("writer");
    up_write(sem);
  }, "writer");
  await until(test, () => sem.wait_list.length === 2);
  KUNIT_EXPECT_EQ(test, log.length, 0, "nobody gets in while we write");
  KUNIT_EXPECT_TRUE(test, rwsem_is_contended(sem));
  log.push("owner");
  up_write(sem);
  await s.wait_for(Promise.all([r, w]));
  KUNIT_EXPECT_EQ(test, log.length, 3);
  KUNIT_EXPECT_EQ(test, log[0], "owner");
  KUNIT_EXPECT_EQ(test, test.k.splats.length, 0);
}

async function waiting_writer_blocks_new_readers(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const sem = new rw_semaphore(k, "&sem");
  const log: string[] = [];
  await down_read(sem);
  const w = s.kthread_run(async () => {
    await down_write(sem);
    log.push("writer");
    await k.msleep(1);
    up_write(sem);
  }, "writer");
  await until(test, () => sem.wait_list.length === 1);
  // A reader arriving now queues behind the writer instead of joining our read hold.
  KUNIT_EXPECT_FALSE(test, down_read_trylock(sem));
  const r = s.kthread_run(async () => {
    await down_read(sem);
    log.push("late reader");
    up_read(sem);
  }, "late reader");
  await until(test, () => sem.wait_list.length === 2);
  up_read(sem);
  await s.wait_for(Promise.all([w, r]));
  KUNIT_EXPECT_EQ(test, log.join(","), "writer,late reader");
}

async function downgrade_lets_readers_in(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const sem = new rw_semaphore(k, "&sem");
  let readers_in = 0;
  await down_write(sem);
  const rs = [1, 2].map((i) => s.kthread_run(async () => {
    await down_read(sem);
    readers_in++;
    up_read(sem);
  }, `reader${i}`));
  await until(test, () => sem.wait_list.length === 2);
  downgrade_write(sem);
  lockdep_assert_held_read(sem);
  KUNIT_EXPECT_EQ(test, sem.readers, 3, "us and both queued readers");
  await s.wait_for(Promise.all(rs));
  KUNIT_EXPECT_EQ(test, readers_in, 2);
  KUNIT_EXPECT_TRUE(test, rwsem_is_locked(sem));
  KUNIT_EXPECT_FALSE(test, down_write_trylock(sem), "we still read");
  up_read(sem);
  KUNIT_EXPECT_TRUE(test, down_write_trylock(sem));
  up_write(sem);
  KUNIT_EXPECT_EQ(test, k.splats.length, 0, "the asserts held");
}

async function trylocks(test: kunit): Promise<void> {
  const k = test.k;
  const sem = new rw_semaphore(k, "&sem");
  KUNIT_EXPECT_TRUE(test, down_read_trylock(sem));
  KUNIT_EXPECT_TRUE(test, down_read_trylock(sem), "readers share, and a trylock cannot deadlock");
  KUNIT_EXPECT_FALSE(test, down_write_trylock(sem));
  up_read(sem);
  up_read(sem);
  KUNIT_EXPECT_TRUE(test, down_write_trylock(sem));
  KUNIT_EXPECT_FALSE(test, down_read_trylock(sem));
  up_write(sem);
  KUNIT_EXPECT_FALSE(test, rwsem_is_locked(sem));
}

async function nested_down_read_is_reported(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const sem = new rw_semaphore(k, "&sem");
  // A second down_read can deadlock behind a queued writer: lockdep calls it recursive.
  await down_read(sem);
  await down_read(sem);
  up_read(sem);
  up_read(sem);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("WARNING: possible recursive locking detected")));
}

async function killable_waits(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const sem = new rw_semaphore(k, "&sem");
  await down_write(sem);
  const waiters: task_struct[] = [];
  const rets: number[] = [];
  const ps = [down_read_killable, down_write_killable].map((fn, i) => s.kthread_run(async () => {
    waiters.push(k.current);
    rets[i] = await fn(sem);
  }, `killable${i}`));
  await until(test, () => sem.wait_list.length === 2);
  for (const t of waiters) {
    t.pending_signals.add(9);
    s.wake_up_process(t);
  }
  await s.wait_for(Promise.all(ps));
  KUNIT_EXPECT_EQ(test, rets[0], -EINTR);
  KUNIT_EXPECT_EQ(test, rets[1], -EINTR);
  KUNIT_EXPECT_EQ(test, sem.wait_list.length, 0);
  KUNIT_EXPECT_TRUE(test, waiters.every((t) => t.held_locks.length === 0));
  up_write(sem);
}

export const rwsem_test_suite: kunit_suite = {
  name: "rwsem",
  test_cases: [
    KUNIT_CASE(readers_share),
    KUNIT_CASE(writer_excludes_everyone),
    KUNIT_CASE(waiting_writer_blocks_new_readers),
    KUNIT_CASE(downgrade_lets_readers_in),
    KUNIT_CASE(trylocks),
    KUNIT_CASE(nested_down_read_is_reported),
    KUNIT_CASE(killable_waits),
  ],
};
