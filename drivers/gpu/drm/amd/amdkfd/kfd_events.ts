// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_events.c and kfd_events.h (Linux 6.8): the events a
// process waits for with AMDKFD_IOC_WAIT_EVENTS. Signal events have a slot in the process's
// signal page; the CP writes an event id there and raises an end-of-pipe interrupt, which sets
// the event. Other events (memory exceptions, hardware exceptions) are set by the interrupt
// handler and carry data — a memory exception carries the faulting address.
//
// kemu: a dGPU's signal page is a KFD BO the runtime allocates and names by handle in its first
// CREATE_EVENT; kemu has no KFD BOs, so the runtime names a page-aligned buffer of its own
// (KFD_SIGNAL_EVENT_LIMIT slots, GPU-accessible as SVM memory) by its address instead, and KFD
// pins its pages as it would kmap the BO. Without one, KFD allocates the page itself (the APU
// flow), which only SET_EVENT can signal.

import { mutex, mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../../../../kernel/locking/spinlock.ts";
import {
  add_wait_queue, remove_wait_queue, schedule_timeout, signal_pending, fatal_signal_pending, wait_queue_entry,
  wait_queue_head_t, waitqueue_active, wake_up_all, default_wake_function, MAX_SCHEDULE_TIMEOUT,
} from "../../../../../kernel/sched/wait.ts";
import { TASK_INTERRUPTIBLE, TASK_RUNNING } from "../../../../../kernel/sched/core.ts";
import { msecs_to_jiffies } from "../../../../../kernel/time/timekeeping.ts";
import type { mm_struct, page } from "../../../../../include/linux/mm_types.ts";
import { pin_user_pages_fast, unpin_user_page } from "../../../../../mm/gup.ts";
import { FOLL_LONGTERM, FOLL_WRITE } from "../../../../../include/linux/mm.ts";
import { alloc_pages, __free_pages } from "../../../../../mm/page_alloc.ts";
import { pfn_to_page } from "../../../../../mm/sparse.ts";
import { GFP_KERNEL, __GFP_ZERO } from "../../../../../include/linux/gfp_types.ts";
import { copy_from_user, copy_to_user } from "../../../../../include/linux/uaccess.ts";
import { NODE_DATA } from "../../../../../include/linux/mmzone.ts";
import { EFAULT, EINTR, EINVAL, EIO, ENOMEM, ENOSPC, ERESTARTSYS } from "../../../../../include/uapi/asm-generic/errno.ts";
import { layout_decode, layout_encode } from "../../../../../include/uapi/struct_layout.ts";
import {
  KFD_IOC_EVENT_DEBUG_EVENT, KFD_IOC_EVENT_HW_EXCEPTION, KFD_IOC_EVENT_MEMORY, KFD_IOC_EVENT_SIGNAL,
  KFD_IOC_WAIT_RESULT_COMPLETE, KFD_IOC_WAIT_RESULT_FAIL, KFD_IOC_WAIT_RESULT_TIMEOUT, KFD_SIGNAL_EVENT_LIMIT,
  kfd_event_data, kfd_hsa_memory_exception_data,
} from "../../../../../include/uapi/linux/kfd_ioctl.ts";
import type { value_of } from "../../../../../include/uapi/struct_layout.ts";
import type { kfd_node, kfd_process } from "./kfd_priv.ts";
import { kfd_lookup_process_by_pasid, kfd_unref_process } from "./kfd_process.ts";

const PAGE_SIZE = 4096;

export const KFD_EVENT_TIMEOUT_IMMEDIATE = 0;
export const KFD_EVENT_TIMEOUT_INFINITE = 0xffffffff;

// Event types (KFD_EVENT_TYPE_* = KFD_IOC_EVENT_*).
export const KFD_EVENT_TYPE_SIGNAL = KFD_IOC_EVENT_SIGNAL;
export const KFD_EVENT_TYPE_HW_EXCEPTION = KFD_IOC_EVENT_HW_EXCEPTION;
export const KFD_EVENT_TYPE_DEBUG = KFD_IOC_EVENT_DEBUG_EVENT;
export const KFD_EVENT_TYPE_MEMORY = KFD_IOC_EVENT_MEMORY;

/** Non-signal events take ids from 2^31 up; signal events use their slot number. */
export const KFD_FIRST_NONSIGNAL_EVENT_ID = 0x80000000;
export const KFD_LAST_NONSIGNAL_EVENT_ID = 0xffffffff;

/** An unsignaled slot holds all ones (64 bits); the CP writes the event id into its low dword. */
const UNSIGNALED_EVENT_SLOT = 0xffffffff;
const SLOT_BYTES = 8;

export type kfd_memory_exception_data_t = value_of<typeof kfd_hsa_memory_exception_data>;

export class kfd_event {
  event_id = 0;
  type = 0;
  auto_reset = false;
  signaled = false;
  /** set_event() count, for signal events' last_event_age handshake. */
  event_age = 1;
  readonly lock: spinlock_t;
  readonly wq: wait_queue_head_t;
  memory_exception_data: kfd_memory_exception_data_t | null = null;
  node_id = 0;

  constructor(p: kfd_process) {
    this.lock = new spinlock_t(p.k, "&ev->lock");
    this.wq = new wait_queue_head_t(p.k, "&ev->wq");
  }
}

/** struct kfd_signal_page: the slots, in pinned user pages or kernel pages. */
export class kfd_signal_page {
  /** The page backing slot i is pages[floor(i * 8 / PAGE_SIZE)]. */
  readonly pages: page[] = [];
  /** The user address the runtime gave (0 for a kernel-allocated page). */
  user_address = 0;
  /** Whether the pages are pinned user pages (unpinned at release) or kernel pages. */
  pinned = false;
  need_to_free_pages = false;
}

/** The event state of a process (p->event_mutex, p->event_idr, p->signal_page, ...). */
export class kfd_event_state {
  readonly event_mutex: mutex;
  readonly event_idr = new Map<number, kfd_event>();
  signal_page: kfd_signal_page | null = null;
  signal_event_count = 0;
  signal_event_limit_reached = false;
  next_nonsignal_id = KFD_FIRST_NONSIGNAL_EVENT_ID;

  constructor(readonly p: kfd_process) {
    this.event_mutex = new mutex(p.k, "&p->event_mutex");
  }
}

// ---- signal slots ------------------------------------------------------------------------------

function slot_location(sp: kfd_signal_page, id: number): { pa: number } | null {
  const off = id * SLOT_BYTES;
  const pg = sp.pages[Math.floor(off / PAGE_SIZE)];
  return pg ? { pa: pg.pfn * PAGE_SIZE + (off % PAGE_SIZE) } : null;
}

function slot_read(p: kfd_process, sp: kfd_signal_page, id: number): [number, number] {
  const loc = slot_location(sp, id);
  if (!loc) return [UNSIGNALED_EVENT_SLOT, UNSIGNALED_EVENT_SLOT];
  const mem = NODE_DATA(p.k).physmem;
  return [mem.read32(loc.pa), mem.read32(loc.pa + 4)];
}

function slot_write(p: kfd_process, sp: kfd_signal_page, id: number, lo: number, hi: number): void {
  const loc = slot_location(sp, id);
  if (!loc) return;
  const mem = NODE_DATA(p.k).physmem;
  mem.write32(loc.pa, lo);
  mem.write32(loc.pa + 4, hi);
}

function slot_is_unsignaled(p: kfd_process, sp: kfd_signal_page, id: number): boolean {
  const [lo, hi] = slot_read(p, sp, id);
  return lo === UNSIGNALED_EVENT_SLOT && hi === UNSIGNALED_EVENT_SLOT;
}

/** allocate_signal_page(): kernel pages, all slots unsignaled (the APU flow). */
function allocate_signal_page(p: kfd_process): kfd_signal_page | null {
  const sp = new kfd_signal_page();
  const npages = (KFD_SIGNAL_EVENT_LIMIT * SLOT_BYTES) / PAGE_SIZE;
  const first = alloc_pages(p.k, GFP_KERNEL | __GFP_ZERO, Math.log2(npages));
  if (!first) return null;
  for (let i = 0; i < npages; i++) sp.pages.push(pfn_to_page(p.k, first.pfn + i));
  sp.need_to_free_pages = true;
  for (let i = 0; i < KFD_SIGNAL_EVENT_LIMIT; i++) slot_write(p, sp, i, UNSIGNALED_EVENT_SLOT, UNSIGNALED_EVENT_SLOT);
  return sp;
}

/**
 * kfd_event_page_set() for a runtime-supplied page: pin the KFD_SIGNAL_EVENT_LIMIT slots at
 * `user_address` (what kfd_kmap_event_page() does with the BO) and mark them unsignaled.
 */
export async function kfd_kmap_event_page(p: kfd_process, user_address: number): Promise<number> {
  const ev = p.events;
  if (ev.signal_page) return -EINVAL;
  const mm = p.mm as mm_struct | null;
  if (!mm || user_address % PAGE_SIZE) return -EINVAL;
  const npages = (KFD_SIGNAL_EVENT_LIMIT * SLOT_BYTES) / PAGE_SIZE;
  const pages: page[] = [];
  const got = await pin_user_pages_fast(mm, user_address, npages, FOLL_WRITE | FOLL_LONGTERM, pages);
  if (got !== npages) {
    for (const pg of pages.slice(0, Math.max(got, 0))) unpin_user_page(pg);
    return -EINVAL;
  }
  const sp = new kfd_signal_page();
  sp.pages.push(...pages);
  sp.user_address = user_address;
  sp.pinned = true;
  for (let i = 0; i < KFD_SIGNAL_EVENT_LIMIT; i++) slot_write(p, sp, i, UNSIGNALED_EVENT_SLOT, UNSIGNALED_EVENT_SLOT);
  ev.signal_page = sp;
  return 0;
}

// ---- creation and destruction ---------------------------------------------------------------

export function kfd_event_init_process(p: kfd_process): void {
  p.events = new kfd_event_state(p);
}

function destroy_event(p: kfd_process, ev: kfd_event): void {
  const st = p.events;
  // Wake waiters: they see the event gone and fail.
  wake_up_all(ev.wq);
  if (ev.type === KFD_EVENT_TYPE_SIGNAL || ev.type === KFD_EVENT_TYPE_DEBUG) st.signal_event_count--;
  st.event_idr.delete(ev.event_id);
}

/** kfd_event_free_process(): destroy every event and release the signal page. */
export function kfd_event_free_process(p: kfd_process): void {
  const st = p.events;
  for (const ev of [...st.event_idr.values()]) destroy_event(p, ev);
  const sp = st.signal_page;
  if (sp?.pinned) for (const pg of sp.pages) unpin_user_page(pg);
  if (sp?.need_to_free_pages) __free_pages(sp.pages[0]!, Math.log2(sp.pages.length));
  st.signal_page = null;
}

function create_signal_event(p: kfd_process, ev: kfd_event): number {
  const st = p.events;
  if (st.signal_event_count === KFD_SIGNAL_EVENT_LIMIT) {
    if (!st.signal_event_limit_reached) {
      p.k.pr_debug("Signal event wasn't created because limit was reached", "kfd");
      st.signal_event_limit_reached = true;
    }
    return -ENOSPC;
  }
  let id = -1;
  for (let i = 0; i < KFD_SIGNAL_EVENT_LIMIT; i++) {
    if (!st.event_idr.has(i)) {
      id = i;
      break;
    }
  }
  if (id < 0) return -ENOMEM;
  ev.event_id = id;
  st.event_idr.set(id, ev);
  st.signal_event_count++;
  slot_write(p, st.signal_page!, id, UNSIGNALED_EVENT_SLOT, UNSIGNALED_EVENT_SLOT);
  return 0;
}

function create_other_event(p: kfd_process, ev: kfd_event): number {
  const st = p.events;
  for (let n = 0; n < KFD_LAST_NONSIGNAL_EVENT_ID - KFD_FIRST_NONSIGNAL_EVENT_ID; n++) {
    const id = st.next_nonsignal_id;
    st.next_nonsignal_id = id === KFD_LAST_NONSIGNAL_EVENT_ID ? KFD_FIRST_NONSIGNAL_EVENT_ID : id + 1;
    if (st.event_idr.has(id)) continue;
    ev.event_id = id;
    st.event_idr.set(id, ev);
    return 0;
  }
  return -ENOMEM;
}

export interface kfd_event_create_out {
  event_id: number;
  event_trigger_data: number;
  event_page_offset: number;
  event_slot_index: number;
}

/** kfd_event_create(): a signal/debug event gets a slot (and trigger data = its id). */
export async function kfd_event_create(p: kfd_process, event_type: number, auto_reset: boolean, node_id: number, out: kfd_event_create_out): Promise<number> {
  const st = p.events;
  const ev = new kfd_event(p);
  ev.type = event_type;
  ev.auto_reset = auto_reset;
  ev.signaled = false;
  ev.node_id = node_id;
  await mutex_lock(st.event_mutex);
  let ret: number;
  if (event_type === KFD_EVENT_TYPE_SIGNAL || event_type === KFD_EVENT_TYPE_DEBUG) {
    if (!st.signal_page) st.signal_page = allocate_signal_page(p);
    ret = st.signal_page ? create_signal_event(p, ev) : -ENOMEM;
    if (!ret) {
      // dGPU runtimes ignore the offset (their page is their own); the APU flow mmaps it.
      out.event_page_offset = 2 * 2 ** 62;
      out.event_slot_index = ev.event_id;
    }
  } else {
    ret = create_other_event(p, ev);
  }
  if (!ret) {
    out.event_id = ev.event_id;
    out.event_trigger_data = ev.event_id;
  }
  mutex_unlock(st.event_mutex);
  return ret;
}

export async function kfd_event_destroy(p: kfd_process, event_id: number): Promise<number> {
  const st = p.events;
  await mutex_lock(st.event_mutex);
  const ev = st.event_idr.get(event_id);
  let ret = -EINVAL;
  if (ev) {
    destroy_event(p, ev);
    ret = 0;
  }
  mutex_unlock(st.event_mutex);
  return ret;
}

// ---- signalling ------------------------------------------------------------------------------

/** set_event(): an auto-reset event with waiters wakes one round and stays unsignaled. */
function set_event(ev: kfd_event): void {
  ev.signaled = !ev.auto_reset || !waitqueue_active(ev.wq);
  if (++ev.event_age > 0xffffffff) ev.event_age = 2;
  for (const w of ev.wq.head) (w as kfd_event_waiter_entry).activated = true;
  wake_up_all(ev.wq);
}

/** kfd_set_event() (AMDKFD_IOC_SET_EVENT): only signal events may be set from user space. */
export async function kfd_set_event(p: kfd_process, event_id: number): Promise<number> {
  const st = p.events;
  await mutex_lock(st.event_mutex);
  const ev = st.event_idr.get(event_id);
  let ret = -EINVAL;
  if (ev && (ev.type === KFD_EVENT_TYPE_SIGNAL || ev.type === KFD_EVENT_TYPE_DEBUG)) {
    spin_lock(ev.lock);
    set_event(ev);
    spin_unlock(ev.lock);
    ret = 0;
  }
  mutex_unlock(st.event_mutex);
  return ret;
}

export async function kfd_reset_event(p: kfd_process, event_id: number): Promise<number> {
  const st = p.events;
  await mutex_lock(st.event_mutex);
  const ev = st.event_idr.get(event_id);
  let ret = -EINVAL;
  if (ev && (ev.type === KFD_EVENT_TYPE_SIGNAL || ev.type === KFD_EVENT_TYPE_DEBUG)) {
    ev.signaled = false;
    ret = 0;
  }
  mutex_unlock(st.event_mutex);
  return ret;
}

/** acknowledge_signal(): a signalled slot goes back to unsignaled. */
function acknowledge_signal(p: kfd_process, ev: kfd_event): void {
  if (p.events.signal_page) slot_write(p, p.events.signal_page, ev.event_id, UNSIGNALED_EVENT_SLOT, UNSIGNALED_EVENT_SLOT);
}

function set_event_from_interrupt(p: kfd_process, ev: kfd_event): void {
  acknowledge_signal(p, ev);
  spin_lock(ev.lock);
  set_event(ev);
  spin_unlock(ev.lock);
}

/**
 * kfd_signal_event_interrupt(): the CP's end-of-pipe interrupt for `pasid`. The id in the IV
 * (23 valid bits) names a slot; if that slot is not signalled, every signal event's slot is
 * scanned (the id may have been dropped by the hardware).
 */
export function kfd_signal_event_interrupt(node: kfd_node, pasid: number, partial_id: number, valid_id_bits: number): void {
  const p = kfd_lookup_process_by_pasid(node.kfd.amdkfd, pasid);
  if (!p) return;
  const st = p.events;
  const sp = st.signal_page;
  if (sp) {
    let ev: kfd_event | null = null;
    if (valid_id_bits && 2 ** valid_id_bits >= KFD_SIGNAL_EVENT_LIMIT && partial_id < KFD_SIGNAL_EVENT_LIMIT &&
        !slot_is_unsignaled(p, sp, partial_id)) {
      ev = st.event_idr.get(partial_id) ?? null;
    }
    if (ev) {
      set_event_from_interrupt(p, ev);
    } else {
      for (const e of st.event_idr.values()) {
        if ((e.type === KFD_EVENT_TYPE_SIGNAL || e.type === KFD_EVENT_TYPE_DEBUG) && !slot_is_unsignaled(p, sp, e.event_id)) {
          set_event_from_interrupt(p, e);
        }
      }
    }
  }
  kfd_unref_process(p);
}

/**
 * kfd_signal_vm_fault_event(): a GPU memory violation: every memory event of the process is
 * set with the exception data (faulting address, failure kind, gpu id).
 */
export function kfd_signal_vm_fault_event(node: kfd_node, pasid: number, data: kfd_memory_exception_data_t): void {
  const p = kfd_lookup_process_by_pasid(node.kfd.amdkfd, pasid);
  if (!p) return;
  lookup_events_by_type_and_signal(p, KFD_EVENT_TYPE_MEMORY, data);
  kfd_unref_process(p);
}

/**
 * lookup_events_by_type_and_signal(): every event of `type` fires; memory events carry `data`.
 * Also the signal of kfd_signal_iommu_event (kfd_iommu.ts) on IOMMUv2 APUs.
 */
export function lookup_events_by_type_and_signal(p: kfd_process, type: number, data: kfd_memory_exception_data_t | null): void {
  for (const ev of p.events.event_idr.values()) {
    if (ev.type !== type) continue;
    spin_lock(ev.lock);
    if (data && type === KFD_EVENT_TYPE_MEMORY) ev.memory_exception_data = structuredClone(data);
    set_event(ev);
    spin_unlock(ev.lock);
  }
}

// ---- waiting -----------------------------------------------------------------------------------

/** struct kfd_event_waiter: a wait-queue entry plus whether its event fired. */
class kfd_event_waiter_entry extends wait_queue_entry {
  activated = false;
  event: kfd_event | null = null;
}

function user_timeout_to_jiffies(user_timeout_ms: number): number {
  if (user_timeout_ms === KFD_EVENT_TIMEOUT_IMMEDIATE) return 0;
  if (user_timeout_ms === KFD_EVENT_TIMEOUT_INFINITE) return MAX_SCHEDULE_TIMEOUT;
  // Round up and add one: the wait is at least the requested time.
  return msecs_to_jiffies(user_timeout_ms) + 1;
}

function init_event_waiter(p: kfd_process, waiter: kfd_event_waiter_entry, event_id: number): number {
  const ev = p.events.event_idr.get(event_id);
  if (!ev) return -EINVAL;
  spin_lock(ev.lock);
  waiter.event = ev;
  waiter.activated = ev.signaled;
  ev.signaled = ev.signaled && !ev.auto_reset;
  if (!waiter.activated) add_wait_queue(ev.wq, waiter);
  spin_unlock(ev.lock);
  return 0;
}

/** test_event_condition(): COMPLETE when one (or, with `all`, every) event fired. */
function test_event_condition(all: boolean, waiters: kfd_event_waiter_entry[]): number {
  let activated = 0;
  for (const w of waiters) {
    if (!w.event) return KFD_IOC_WAIT_RESULT_FAIL;
    if (w.activated) {
      if (!all) return KFD_IOC_WAIT_RESULT_COMPLETE;
      activated++;
    }
  }
  return activated === waiters.length ? KFD_IOC_WAIT_RESULT_COMPLETE : KFD_IOC_WAIT_RESULT_TIMEOUT;
}

/** copy_signaled_event_data(): memory events hand their exception data back to user space. */
async function copy_signaled_event_data(p: kfd_process, waiters: kfd_event_waiter_entry[], events_ptr: number, datas: Array<value_of<typeof kfd_event_data>>): Promise<number> {
  for (let i = 0; i < waiters.length; i++) {
    const w = waiters[i]!;
    const ev = w.event;
    if (!ev || !w.activated || !p.events.event_idr.has(ev.event_id)) continue;
    if (ev.type === KFD_EVENT_TYPE_MEMORY && ev.memory_exception_data) {
      const d = datas[i]!;
      d.memory_exception_data = structuredClone(ev.memory_exception_data);
      const bytes = layout_encode(kfd_event_data, d);
      if (await copy_to_user(p.k, events_ptr + i * kfd_event_data.size, bytes, bytes.length)) return -EFAULT;
    }
  }
  return 0;
}

export interface kfd_wait_result {
  timeout_ms: number;
  wait_result: number;
}

/**
 * kfd_wait_on_events(): wait until one (or all) of `num_events` events in the user array at
 * `events_ptr` fire, at most `timeout_ms` (0 = poll, 0xffffffff = forever). Interruptible.
 */
export async function kfd_wait_on_events(p: kfd_process, num_events: number, events_ptr: number, all: boolean, io: kfd_wait_result): Promise<number> {
  const st = p.events;
  const timeout = user_timeout_to_jiffies(io.timeout_ms);
  const k = p.k;
  const waiters: kfd_event_waiter_entry[] = [];
  const datas: Array<value_of<typeof kfd_event_data>> = [];
  let ret = 0;
  await mutex_lock(st.event_mutex);
  for (let i = 0; i < num_events && !ret; i++) {
    const raw = new Uint8Array(kfd_event_data.size);
    if (await copy_from_user(k, raw, events_ptr + i * kfd_event_data.size, raw.length)) {
      ret = -EFAULT;
      break;
    }
    const d = layout_decode(kfd_event_data, raw);
    datas.push(d);
    const w = new kfd_event_waiter_entry(k.current, default_wake_function);
    waiters.push(w);
    ret = init_event_waiter(p, w, d.event_id);
  }
  if (!ret) {
    io.wait_result = test_event_condition(all, waiters);
    if (io.wait_result === KFD_IOC_WAIT_RESULT_COMPLETE) {
      ret = await copy_signaled_event_data(p, waiters, events_ptr, datas);
    } else if (io.wait_result !== KFD_IOC_WAIT_RESULT_FAIL) {
      mutex_unlock(st.event_mutex);
      ret = await wait_loop(p, waiters, all, io, timeout);
      await mutex_lock(st.event_mutex);
      if (!ret && io.wait_result === KFD_IOC_WAIT_RESULT_COMPLETE) ret = await copy_signaled_event_data(p, waiters, events_ptr, datas);
    }
  }
  for (const w of waiters) if (w.event && w.head) remove_wait_queue(w.event.wq, w);
  mutex_unlock(st.event_mutex);
  if (ret) io.wait_result = KFD_IOC_WAIT_RESULT_FAIL;
  else if (io.wait_result === KFD_IOC_WAIT_RESULT_FAIL) ret = -EIO;
  return ret;
}

async function wait_loop(p: kfd_process, waiters: kfd_event_waiter_entry[], all: boolean, io: kfd_wait_result, timeout: number): Promise<number> {
  const k = p.k;
  const cur = k.current;
  for (;;) {
    if (fatal_signal_pending(cur)) return -EINTR;
    if (signal_pending(cur)) return -ERESTARTSYS;
    k.sched.set_current_state(TASK_INTERRUPTIBLE);
    cur.wait_desc = "kfd_wait_on_events";
    io.wait_result = test_event_condition(all, waiters);
    if (io.wait_result !== KFD_IOC_WAIT_RESULT_TIMEOUT || timeout <= 0) break;
    timeout = await schedule_timeout(k, timeout);
  }
  k.sched.set_current_state(TASK_RUNNING);
  return 0;
}

/** Memory exception data for a GPU VM fault at page `page_addr` (kfd_int_process_v9). */
export function kfd_vm_fault_exception_data(node: kfd_node, page_addr: number, write: boolean, valid: boolean): kfd_memory_exception_data_t {
  return {
    failure: { NotPresent: valid ? 0 : 1, ReadOnly: write && valid ? 1 : 0, NoExecute: 0, imprecise: 0 },
    va: page_addr * PAGE_SIZE,
    gpu_id: node.id,
    ErrorType: 0,
  };
}

export { kfd_event_data };
