// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_smi_events.c (Linux 6.8): the System Management
// Interface event stream. AMDKFD_IOC_SMI_EVENTS returns an anonymous fd for one GPU; writing an
// 8-byte mask there selects events (bit i-1 for event i); reading returns text lines
// "<event id hex> <fields>\n" in the formats of amdkfd.md §5.7. A reader sees its own
// process's events, or everyone's with the ALL_PROCESS bit if it is privileged.

import { spinlock_t, spin_lock, spin_unlock } from "../../../../../kernel/locking/spinlock.ts";
import { wait_queue_head_t, wake_up_all } from "../../../../../kernel/sched/wait.ts";
import type { file, file_operations, inode } from "../../../../../include/linux/fs.ts";
import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import { copy_from_user, copy_to_user } from "../../../../../include/linux/uaccess.ts";
import { EAGAIN, EFAULT, EINVAL } from "../../../../../include/uapi/asm-generic/errno.ts";
import { O_CLOEXEC, O_RDWR } from "../../../../../include/uapi/asm-generic/fcntl.ts";
import {
  KFD_SMI_EVENT_ALL_PROCESS, KFD_SMI_EVENT_MIGRATE_END, KFD_SMI_EVENT_MIGRATE_START, KFD_SMI_EVENT_MSG_SIZE,
  KFD_SMI_EVENT_PAGE_FAULT_END, KFD_SMI_EVENT_PAGE_FAULT_START, KFD_SMI_EVENT_QUEUE_EVICTION,
  KFD_SMI_EVENT_QUEUE_RESTORE, KFD_SMI_EVENT_UNMAP_FROM_GPU, KFD_SMI_EVENT_VMFAULT,
} from "../../../../../include/uapi/linux/kfd_ioctl.ts";
import { anon_inode_getfd } from "../../../../../fs/anon_inodes.ts";
import type { kfd_node } from "./kfd_priv.ts";
import type { amdkfd } from "./kfd_module.ts";
import { kfd_lookup_process_by_mm, kfd_lookup_process_by_pasid, kfd_unref_process } from "./kfd_process.ts";
import { trace_kfd_smi_event } from "../../../../../include/trace/events/amdkfd.ts";

/** MAX_KFIFO_SIZE: each reader's buffer. */
const MAX_KFIFO_SIZE = 1024;
const encoder = new TextEncoder();

/** struct kfd_smi_client: one open event fd. */
export class kfd_smi_client {
  /** The 64-bit event mask as two halves (bits 0..31, 32..63). */
  events_lo = 0;
  events_hi = 0;
  fifo: Uint8Array = new Uint8Array(0);
  readonly wait_queue: wait_queue_head_t;
  readonly lock: spinlock_t;
  /** The opener's thread-group id; its events are the ones it sees. */
  pid: number;
  /** CAP_SYS_ADMIN at open: may ask for every process's events. */
  suser: boolean;

  constructor(readonly dev: kfd_node, pid: number, suser: boolean) {
    this.wait_queue = new wait_queue_head_t(dev.k, "&client->wait_queue");
    this.lock = new spinlock_t(dev.k, "&client->lock");
    this.pid = pid;
    this.suser = suser;
  }
}

function event_bit(c: kfd_smi_client, event: number): boolean {
  const bit = event - 1;
  return bit < 32 ? (c.events_lo & (2 ** bit)) !== 0 : (c.events_hi & (2 ** (bit - 32))) !== 0;
}

/** kfd_smi_ev_enabled(): the event is in the mask and the reader may see `pid`'s events. */
function kfd_smi_ev_enabled(pid: number, client: kfd_smi_client, event: number): boolean {
  if (pid && client.pid !== pid && !(client.suser && event_bit(client, KFD_SMI_EVENT_ALL_PROCESS))) return false;
  return event_bit(client, event);
}

function add_event_to_kfifo(pid: number, dev: kfd_node, smi_event: number, msg: Uint8Array): void {
  for (const client of dev.smi_clients) {
    if (!kfd_smi_ev_enabled(pid, client, smi_event)) continue;
    spin_lock(client.lock);
    if (MAX_KFIFO_SIZE - client.fifo.length >= msg.length) {
      const f = new Uint8Array(client.fifo.length + msg.length);
      f.set(client.fifo);
      f.set(msg, client.fifo.length);
      client.fifo = f;
      wake_up_all(client.wait_queue);
    } else {
      dev.k.pr_debug(`smi_event(EventID: ${smi_event}): no space left`, "kfd");
    }
    spin_unlock(client.lock);
  }
}

/** kfd_smi_event_add(): "<id hex> " + the event's text, cut at KFD_SMI_EVENT_MSG_SIZE - 1. */
function kfd_smi_event_add(pid: number, dev: kfd_node, smi_event: number, text: string): void {
  trace_kfd_smi_event(smi_event)?.trace(dev.k, { pid, text });
  if (dev.smi_clients.length === 0) return;
  const line = `${smi_event.toString(16)} ${text}`;
  const bytes = encoder.encode(line).subarray(0, KFD_SMI_EVENT_MSG_SIZE - 1);
  add_event_to_kfifo(pid, dev, smi_event, bytes);
}

const hex = (n: number): string => n.toString(16);
/** ktime_get_boottime_ns(): whole nanoseconds (the device cost model leaves fractions). */
const now_ns = (dev: kfd_node): number => Math.floor(dev.k.ktime_get());

export function kfd_smi_event_update_vmfault(dev: kfd_node, pasid: number): void {
  const p = kfd_lookup_process_by_pasid(dev.kfd.amdkfd, pasid);
  if (!p) return;
  kfd_smi_event_add(0, dev, KFD_SMI_EVENT_VMFAULT, `${hex(p.lead_thread.pid)}:${p.lead_thread.comm}\n`);
  kfd_unref_process(p);
}

export function kfd_smi_event_page_fault_start(node: kfd_node, pid: number, address: number, write_fault: boolean, ts: number): void {
  kfd_smi_event_add(pid, node, KFD_SMI_EVENT_PAGE_FAULT_START, `${Math.floor(ts)} -${pid} @${hex(address)}(${hex(node.id)}) ${write_fault ? "W" : "R"}\n`);
}

export function kfd_smi_event_page_fault_end(node: kfd_node, pid: number, address: number, migration: boolean): void {
  kfd_smi_event_add(pid, node, KFD_SMI_EVENT_PAGE_FAULT_END, `${now_ns(node)} -${pid} @${hex(address)}(${hex(node.id)}) ${migration ? "M" : "U"}\n`);
}

export function kfd_smi_event_migration_start(node: kfd_node, pid: number, start: number, end: number, from: number, to: number, prefetch_loc: number, preferred_loc: number, trigger: number): void {
  kfd_smi_event_add(pid, node, KFD_SMI_EVENT_MIGRATE_START,
    `${now_ns(node)} -${pid} @${hex(start)}(${hex(end - start)}) ${hex(from)}->${hex(to)} ${hex(prefetch_loc)}:${hex(preferred_loc)} ${trigger}\n`);
}

export function kfd_smi_event_migration_end(node: kfd_node, pid: number, start: number, end: number, from: number, to: number, trigger: number): void {
  kfd_smi_event_add(pid, node, KFD_SMI_EVENT_MIGRATE_END, `${now_ns(node)} -${pid} @${hex(start)}(${hex(end - start)}) ${hex(from)}->${hex(to)} ${trigger}\n`);
}

export function kfd_smi_event_queue_eviction(node: kfd_node, pid: number, trigger: number): void {
  kfd_smi_event_add(pid, node, KFD_SMI_EVENT_QUEUE_EVICTION, `${now_ns(node)} -${pid} ${hex(node.id)} ${trigger}\n`);
}

export function kfd_smi_event_queue_restore(node: kfd_node, pid: number): void {
  kfd_smi_event_add(pid, node, KFD_SMI_EVENT_QUEUE_RESTORE, `${now_ns(node)} -${pid} ${hex(node.id)}\n`);
}

/** kfd_smi_event_queue_restore_rescheduled(): restore_work will try again ("R"). */
export function kfd_smi_event_queue_restore_rescheduled(kfd: amdkfd, mm: mm_struct): void {
  const p = kfd_lookup_process_by_mm(kfd, mm);
  if (!p) return;
  for (let i = 0; i < p.n_pdds; i++) {
    const pdd = p.pdds[i]!;
    kfd_smi_event_add(p.lead_thread.pid, pdd.dev, KFD_SMI_EVENT_QUEUE_RESTORE, `${now_ns(pdd.dev)} -${p.lead_thread.pid} ${hex(pdd.dev.id)} R\n`);
  }
  kfd_unref_process(p);
}

export function kfd_smi_event_unmap_from_gpu(node: kfd_node, pid: number, address: number, last: number, trigger: number): void {
  kfd_smi_event_add(pid, node, KFD_SMI_EVENT_UNMAP_FROM_GPU, `${now_ns(node)} -${pid} @${hex(address)}(${hex(last - address + 1)}) ${hex(node.id)} ${trigger}\n`);
}

// ---- the event fd ------------------------------------------------------------------------------

/** kfd_smi_ev_read(): what is buffered, up to `size` bytes; -EAGAIN when nothing is. */
async function kfd_smi_ev_read(filep: file, user: number, size: number): Promise<number> {
  const client = filep.private_data as kfd_smi_client;
  size = Math.min(size, MAX_KFIFO_SIZE);
  spin_lock(client.lock);
  const to_copy = Math.min(size, client.fifo.length);
  if (!to_copy) {
    spin_unlock(client.lock);
    return -EAGAIN;
  }
  const buf = client.fifo.slice(0, to_copy);
  client.fifo = client.fifo.slice(to_copy);
  spin_unlock(client.lock);
  if (await copy_to_user(client.dev.k, user, buf, to_copy)) return -EFAULT;
  return to_copy;
}

/** kfd_smi_ev_write(): the 64-bit event mask. */
async function kfd_smi_ev_write(filep: file, user: number, size: number): Promise<number> {
  const client = filep.private_data as kfd_smi_client;
  if (size < 8) return -EINVAL;
  const b = new Uint8Array(8);
  if (await copy_from_user(client.dev.k, b, user, 8)) return -EFAULT;
  const dv = new DataView(b.buffer);
  client.events_lo = dv.getUint32(0, true);
  client.events_hi = dv.getUint32(4, true);
  return 8;
}

function kfd_smi_ev_release(_inode: inode, filep: file): number {
  const client = filep.private_data as kfd_smi_client;
  const dev = client.dev;
  const i = dev.smi_clients.indexOf(client);
  if (i >= 0) dev.smi_clients.splice(i, 1);
  return 0;
}

const kfd_smi_ev_fops: file_operations = {
  read: (f: file, ubuf: number, count: number) => kfd_smi_ev_read(f, ubuf, count),
  write: (f: file, ubuf: number, count: number) => kfd_smi_ev_write(f, ubuf, count),
  release: kfd_smi_ev_release,
};

/** kfd_smi_event_open(): a new reader of `dev`'s events, as an fd in the caller's table. */
export function kfd_smi_event_open(dev: kfd_node): number {
  const kfd = dev.kfd.amdkfd;
  const cur = dev.k.current;
  // kemu has no credentials: every process counts as privileged (CAP_SYS_ADMIN).
  const client = new kfd_smi_client(dev, cur.tgid, true);
  dev.smi_clients.push(client);
  const fd = anon_inode_getfd(kfd.vfs, "kfd_smi_ev", kfd_smi_ev_fops, client, O_RDWR | O_CLOEXEC);
  if (fd < 0) dev.smi_clients.splice(dev.smi_clients.indexOf(client), 1);
  return fd;
}
