// Mirrors the page-lock part of mm/filemap.c (Linux 6.8): PG_locked is a sleeping bit lock.
// Waiters sleep on a hashed wait queue (page_waitqueue) and set PG_waiters so that unlock_page()
// knows to wake the queue. Every waiter rechecks its own page, so hash sharing is harmless.

import type { page } from "../include/linux/mm_types.ts";
import {
  PageLocked, PageWaiters, SetPageWaiters, ClearPageWaiters, __SetPageLocked, __ClearPageLocked,
} from "../include/linux/page-flags.ts";
import { EINTR } from "../include/uapi/asm-generic/errno.ts";
import { wait_event, wait_event_killable, wake_up_all, wait_queue_head_t } from "../kernel/sched/wait.ts";

/** PAGE_WAIT_TABLE_BITS = 8: 256 hashed queues per machine. */
const PAGE_WAIT_TABLE_SIZE = 256;

/** page_waitqueue(): the hashed wait queue of a page, created on first use. */
export function page_waitqueue(p: page): wait_queue_head_t {
  const pgdat = p.zone.zone_pgdat;
  const h = p.pfn % PAGE_WAIT_TABLE_SIZE;
  let wq = pgdat.page_wait_table.get(h);
  if (!wq) {
    wq = new wait_queue_head_t(pgdat.k, `page_wait_table[${h}]`);
    pgdat.page_wait_table.set(h, wq);
  }
  return wq;
}

/** trylock_page(): take PG_locked if it is free. */
export function trylock_page(p: page): boolean {
  if (PageLocked(p)) return false;
  __SetPageLocked(p);
  return true;
}

/** The wait condition of a lock waiter: take the lock, or mark that someone waits. */
function lock_or_mark(p: page): boolean {
  if (trylock_page(p)) return true;
  SetPageWaiters(p);
  return false;
}

/** lock_page() / folio_lock(): sleeps (uninterruptibly) until the page lock is ours. */
export async function lock_page(p: page): Promise<void> {
  const k = p.zone.zone_pgdat.k;
  k.might_sleep("lock_page");
  if (trylock_page(p)) return;
  await wait_event(page_waitqueue(p), () => lock_or_mark(p));
}

/** lock_page_killable(): 0, or -EINTR on a fatal signal. */
export async function lock_page_killable(p: page): Promise<number> {
  const k = p.zone.zone_pgdat.k;
  k.might_sleep("lock_page_killable");
  if (trylock_page(p)) return 0;
  const ret = await wait_event_killable(page_waitqueue(p), () => lock_or_mark(p));
  return ret < 0 ? -EINTR : 0;
}

/** unlock_page() / folio_unlock(): release PG_locked and wake whoever waits on the page. */
export function unlock_page(p: page): void {
  const k = p.zone.zone_pgdat.k;
  if (!PageLocked(p)) {
    k.WARN_ON_ONCE(true, `unlock_page: pfn 0x${p.pfn.toString(16)} not locked`);
    return;
  }
  __ClearPageLocked(p);
  if (PageWaiters(p)) {
    ClearPageWaiters(p);
    wake_up_all(page_waitqueue(p));
  }
}

/** wait_on_page_locked() / folio_wait_locked(): sleep until the page is unlocked (not taking it). */
export async function wait_on_page_locked(p: page): Promise<void> {
  const k = p.zone.zone_pgdat.k;
  k.might_sleep("wait_on_page_locked");
  if (!PageLocked(p)) return;
  await wait_event(page_waitqueue(p), () => {
    if (!PageLocked(p)) return true;
    SetPageWaiters(p);
    return false;
  });
}

export const folio_lock = lock_page;
export const folio_trylock = trylock_page;
export const folio_unlock = unlock_page;
export const folio_wait_locked = wait_on_page_locked;
