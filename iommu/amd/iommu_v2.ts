// Mirrors drivers/iommu/amd/iommu_v2.c (Linux 6.5 — the module's last form: sbdf device keys,
// refcount_t pasid states, mmap_read_lock, the ->invalidate_range mmu-notifier hook; 6.6 renamed
// that hook and 6.7 removed the module). It binds a process's address space to a (PCI device,
// PASID) by pointing the PASID's GCR3 entry at the process page tables, and services the
// device's PRI page requests: ppr_notifier (atomic, on the PPR notifier chain) accounts each
// request in its PRI group and queues a struct fault on iommu_wq; do_fault resolves it with
// handle_mm_fault and finish_pri_tag answers the group with COMPLETE_PPR once its last request is
// done. An mmu notifier flushes the IOMMU/device TLBs when the CPU page tables change and tears
// the binding down when the mm goes away.
//
// It is the loadable module "amd_iommu_v2"; device drivers reach its exported functions through
// amd_iommu_v2_get() (symbol_get) on the module instance.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { AMD_IOMMU, IOMMU_CORE, KERNEL, PCI, SLAB, WORKQUEUE } from "../../kernel/tokens.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import type { KernelModule, ModuleDef, ModuleLoader, ModuleParams } from "../../kernel/module/main.ts";
import type { Slab } from "../../mm/slab_common.ts";
import type { PciBus } from "../../drivers/pci/probe.ts";
import type { task_struct } from "../../kernel/sched/core.ts";
import type { mm_struct, vm_area_struct } from "../../include/linux/mm_types.ts";
import type { pci_dev } from "../../include/linux/pci.ts";
import { EBUSY, EINVAL, ENODEV, ENOMEM } from "../../include/uapi/asm-generic/errno.ts";
import { GFP_ATOMIC, GFP_KERNEL } from "../../include/linux/gfp_types.ts";
import {
  FAULT_FLAG_REMOTE, FAULT_FLAG_USER, FAULT_FLAG_WRITE, VM_EXEC, VM_FAULT_ERROR, VM_READ, VM_WRITE,
} from "../../include/linux/mm.ts";
import { ATOMIC_INIT, atomic_dec_and_test, atomic_inc, atomic_read, atomic_set, type atomic_t } from "../../include/linux/atomic.ts";
import { spin_lock_irqsave, spin_unlock_irqrestore, spinlock_t } from "../../kernel/locking/spinlock.ts";
import { wait_event, wait_queue_head_t, wake_up } from "../../kernel/sched/wait.ts";
import { INIT_WORK, WQ_MEM_RECLAIM, work_struct, type Workqueues, type workqueue_struct } from "../../kernel/workqueue.ts";
import { NOTIFY_DONE, NOTIFY_OK, type notifier_block } from "../../kernel/notifier.ts";
import { mmu_notifier, mmu_notifier_register, mmu_notifier_unregister, type mmu_notifier_ops } from "../../mm/mmu_notifier.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../include/linux/mmap_lock.ts";
import { find_extend_vma } from "../../mm/mmap.ts";
import { handle_mm_fault } from "../../mm/memory.ts";
import { get_task_mm, mmput } from "../../kernel/fork.ts";
import { free_page, get_zeroed_page } from "../../mm/page_alloc.ts";
import { pci_dev_put, pci_get_domain_bus_and_slot } from "../../drivers/pci/search.ts";
import {
  AMD_IOMMU_INV_PRI_RSP_FAIL, AMD_IOMMU_INV_PRI_RSP_INVALID, AMD_IOMMU_INV_PRI_RSP_SUCCESS, type amd_iommu_invalid_ppr_cb,
  type amd_iommu_invalidate_ctx,
} from "../../include/linux/amd-iommu.ts";
import { IOMMU_DOMAIN_IDENTITY, type iommu_core, type iommu_domain } from "../iommu.ts";
import type { AmdIommu } from "./iommu.ts";
import {
  PASID_MASK, PCI_BUS_NUM, PCI_SBDF_TO_DEVID, PCI_SBDF_TO_SEGID, PPR_FAILURE, PPR_FAULT_EXEC, PPR_FAULT_READ,
  PPR_FAULT_USER, PPR_FAULT_WRITE, PPR_INVALID, PPR_SUCCESS, ppr_tag_index, ppr_tag_last, type amd_iommu_fault,
} from "./amd_iommu_types.ts";

export const PRI_QUEUE_SIZE = 512;
const PAGE_SIZE = 4096;
/** sizeof() of the structures, for slab accounting (x86-64 layout). */
const SIZEOF_PASID_STATE = 6280;
const SIZEOF_DEVICE_STATE = 136;
const SIZEOF_FAULT = 80;

/** struct pri_queue: one PRI group (PRG index) of a PASID. */
export class pri_queue {
  /** Requests of the group received and not yet finished. */
  readonly inflight: atomic_t = ATOMIC_INIT(0);
  /** The group's "last request" has arrived. */
  finish = false;
  /** Response to send; PPR_SUCCESS unless a request failed (last writer wins). */
  status = PPR_SUCCESS;
}

/** The embedded struct mmu_notifier; `state` stands for container_of(mn, struct pasid_state, mn). */
class pasid_state_mn extends mmu_notifier {
  constructor(
    ops: mmu_notifier_ops,
    readonly state: pasid_state,
  ) {
    super(ops);
  }
}

/** struct pasid_state: one bound (device, PASID). */
export class pasid_state {
  /** refcount_t: the bind reference, lookups, and one per queued fault. */
  readonly count: atomic_t = ATOMIC_INIT(0);
  /** Leftover of the invalidate_range_start/end era; never used in 6.5. */
  mmu_notifier_count = 0;
  /** No mm_users reference is held after bind: the notifier's release tells when it goes. */
  mm: mm_struct | null = null;
  readonly mn: pasid_state_mn;
  readonly pri: pri_queue[] = Array.from({ length: PRI_QUEUE_SIZE }, () => new pri_queue());
  device_state!: device_state;
  pasid = 0;
  /** True while binding and once teardown started: page requests then get INVALID. */
  invalid = true;
  /** Protects pri[]. */
  readonly lock: spinlock_t;
  /** Where put_pasid_state_wait() waits for count == 0. */
  readonly wq: wait_queue_head_t;

  constructor(k: Kernel, ops: mmu_notifier_ops) {
    this.mn = new pasid_state_mn(ops, this);
    this.lock = new spinlock_t(k, "&pasid_state->lock");
    this.wq = new wait_queue_head_t(k, "&pasid_state->wq");
  }
}

/** One page of the PASID → pasid_state radix table (512 pointers). */
export class pasid_table {
  readonly slots: Array<pasid_state | pasid_table | null> = new Array(512).fill(null);
  constructor(readonly pa: number) {}
}

/** struct device_state: one IOMMUv2-enabled PCI device. */
export class device_state {
  sbdf = 0;
  readonly count: atomic_t = ATOMIC_INIT(0);
  pdev!: pci_dev;
  states!: pasid_table;
  domain: iommu_domain | null = null;
  pasid_levels = 0;
  max_pasids = 0;
  inv_ppr_cb: amd_iommu_invalid_ppr_cb | null = null;
  inv_ctx_cb: amd_iommu_invalidate_ctx | null = null;
  /** Protects states. */
  readonly lock: spinlock_t;
  readonly wq: wait_queue_head_t;

  constructor(k: Kernel) {
    this.lock = new spinlock_t(k, "&dev_state->lock");
    this.wq = new wait_queue_head_t(k, "&dev_state->wq");
  }
}

/** struct fault: one queued page request (a work item on iommu_wq). */
export class fault {
  readonly work = new work_struct();
  dev_state!: device_state;
  /** Holds a pasid_state reference until do_fault is done. */
  state!: pasid_state;
  /** Never set or used: do_fault uses state.mm. */
  mm: mm_struct | null = null;
  address = 0;
  pasid = 0;
  /** PRG index (9 bits). */
  tag = 0;
  finish = 0;
  flags = 0;
}

/** symbol_get() of the module: its instance, with a module reference, or null if not loaded. */
export function amd_iommu_v2_get(loader: ModuleLoader): AmdIommuV2 | null {
  if (!loader.try_module_get("amd_iommu_v2")) return null;
  return loader.find_module("amd_iommu_v2")!.instance as AmdIommuV2;
}

/** symbol_put() */
export function amd_iommu_v2_put(loader: ModuleLoader): void {
  loader.module_put("amd_iommu_v2");
}

@injectable()
export class AmdIommuV2 implements KernelModule {
  params?: ModuleParams;
  /** state_list: every initialised device. */
  readonly state_list: device_state[] = [];
  readonly state_lock: spinlock_t;
  iommu_wq: workqueue_struct | null = null;
  readonly iommu_mn: mmu_notifier_ops = {
    release: (mn, mm) => this.mn_release(mn, mm),
    invalidate_range: (mn, mm, start, end) => this.mn_invalidate_range(mn, mm, start, end),
  };
  readonly ppr_nb: notifier_block<amd_iommu_fault> = {
    notifier_call: (nb, e, data) => this.ppr_notifier(nb, e, data),
  };

  constructor(
    @inject(KERNEL) readonly k: Kernel,
    @inject(AMD_IOMMU) readonly amd: AmdIommu,
    @inject(IOMMU_CORE) readonly core: iommu_core,
    @inject(WORKQUEUE) readonly wqs: Workqueues,
    @inject(SLAB) readonly slab: Slab,
    @inject(PCI) readonly pci: PciBus,
  ) {
    this.state_lock = new spinlock_t(k, "state_lock");
  }

  // ---- refcounts --------------------------------------------------------------------------------

  private __get_device_state(sbdf: number): device_state | null {
    return this.state_list.find((d) => d.sbdf === sbdf) ?? null;
  }

  /** get_device_state(): lookup with a reference, under state_lock. */
  get_device_state(sbdf: number): device_state | null {
    const flags = spin_lock_irqsave(this.state_lock);
    const dev_state = this.__get_device_state(sbdf);
    if (dev_state) atomic_inc(dev_state.count);
    spin_unlock_irqrestore(this.state_lock, flags);
    return dev_state;
  }

  put_device_state(dev_state: device_state): void {
    if (atomic_dec_and_test(dev_state.count)) wake_up(dev_state.wq);
  }

  /** __get_pasid_state_ptr(): the slot of `pasid`, allocating table pages (GFP_ATOMIC) when asked. Lock held. */
  private __get_pasid_state_ptr(dev_state: device_state, pasid: number, alloc: boolean): { table: pasid_table; index: number } | null {
    let level = dev_state.pasid_levels;
    let root = dev_state.states;
    for (;;) {
      const index = Math.floor(pasid / 512 ** level) % 512;
      if (level === 0) return { table: root, index };
      let next = root.slots[index] as pasid_table | null;
      if (!next) {
        if (!alloc) return null;
        const pa = get_zeroed_page(this.k, GFP_ATOMIC);
        if (!pa) return null;
        next = new pasid_table(pa);
        root.slots[index] = next;
      }
      root = next;
      level--;
    }
  }

  /** set_pasid_state(): claims the slot; -ENOMEM also when it is already taken (a quirk). */
  private set_pasid_state(dev_state: device_state, state: pasid_state, pasid: number): number {
    const flags = spin_lock_irqsave(dev_state.lock);
    const ptr = this.__get_pasid_state_ptr(dev_state, pasid, true);
    let ret = -ENOMEM;
    if (ptr && !ptr.table.slots[ptr.index]) {
      ptr.table.slots[ptr.index] = state;
      ret = 0;
    }
    spin_unlock_irqrestore(dev_state.lock, flags);
    return ret;
  }

  private clear_pasid_state(dev_state: device_state, pasid: number): void {
    const flags = spin_lock_irqsave(dev_state.lock);
    const ptr = this.__get_pasid_state_ptr(dev_state, pasid, true);
    if (ptr) ptr.table.slots[ptr.index] = null;
    spin_unlock_irqrestore(dev_state.lock, flags);
  }

  /** get_pasid_state(): lookup with a reference, under dev_state->lock. */
  get_pasid_state(dev_state: device_state, pasid: number): pasid_state | null {
    const flags = spin_lock_irqsave(dev_state.lock);
    const ptr = this.__get_pasid_state_ptr(dev_state, pasid, false);
    const ret = (ptr?.table.slots[ptr.index] as pasid_state | null) ?? null;
    if (ret) atomic_inc(ret.count);
    spin_unlock_irqrestore(dev_state.lock, flags);
    return ret;
  }

  private free_pasid_state(state: pasid_state): void {
    this.slab.kfree(state);
  }

  put_pasid_state(state: pasid_state): void {
    if (atomic_dec_and_test(state.count)) wake_up(state.wq);
  }

  /** put_pasid_state_wait(): drop the bind reference, wait until nobody holds one, free. */
  private async put_pasid_state_wait(state: pasid_state): Promise<void> {
    atomic_dec_and_test(state.count);
    await wait_event(state.wq, () => atomic_read(state.count) === 0);
    this.free_pasid_state(state);
  }

  // ---- teardown -----------------------------------------------------------------------------------

  /**
   * unbind_pasid(): mark invalid (new page requests get INVALID), clear GCR3[pasid] (the device
   * loses access; includes a PASID flush), then drain iommu_wq so no queued fault is left.
   */
  private async unbind_pasid(state: pasid_state): Promise<void> {
    const domain = state.device_state.domain!;
    state.invalid = true;
    this.amd.amd_iommu_domain_clear_gcr3(domain, state.pasid);
    await this.wqs.flush_workqueue(this.iommu_wq!);
  }

  private free_pasid_table(t: pasid_table, level: number): void {
    if (level > 0) for (const s of t.slots) if (s) this.free_pasid_table(s as pasid_table, level - 1);
    free_page(this.k, t.pa);
  }

  /** free_pasid_states(): unbind every PASID still bound, then free the table pages. */
  private async free_pasid_states(dev_state: device_state): Promise<void> {
    for (let i = 0; i < dev_state.max_pasids; i++) {
      const state = this.get_pasid_state(dev_state, i);
      if (!state) continue;
      this.put_pasid_state(state);
      // Calls mn_release (which unbinds) unless the mm already released the notifier.
      await mmu_notifier_unregister(state.mn, state.mm!);
      await this.put_pasid_state_wait(state);
      this.put_device_state(dev_state);
    }
    this.k.BUG_ON(dev_state.pasid_levels > 2);
    this.free_pasid_table(dev_state.states, dev_state.pasid_levels);
  }

  /**
   * free_device_state(): all PASIDs down, wait for the last reference, then detach the group
   * (only then can no further page request arrive) and free the domain.
   */
  private async free_device_state(dev_state: device_state): Promise<void> {
    await this.free_pasid_states(dev_state);
    await wait_event(dev_state.wq, () => atomic_read(dev_state.count) === 0);
    const group = this.core.iommu_group_get(dev_state.pdev.dev);
    if (this.k.WARN_ON(!group)) return;
    this.core.iommu_detach_group(dev_state.domain!, group!);
    this.core.iommu_group_put(group);
    this.core.iommu_domain_free(dev_state.domain!);
    this.slab.kfree(dev_state);
  }

  // ---- the mmu notifier --------------------------------------------------------------------------

  /**
   * mn_invalidate_range(): the CPU page tables of [start, end) changed. One page → flush that
   * page of the PASID; more → flush the whole PASID. Atomic context (TLB-flush paths).
   */
  mn_invalidate_range(mn: mmu_notifier, _mm: mm_struct, start: number, end: number): void {
    const state = (mn as pasid_state_mn).state;
    const domain = state.device_state.domain!;
    if (Math.floor(start / PAGE_SIZE) === Math.floor((end - 1) / PAGE_SIZE)) this.amd.amd_iommu_flush_page(domain, state.pasid, start);
    else this.amd.amd_iommu_flush_tlb(domain, state.pasid);
  }

  /** mn_release(): the mm goes away (exit_mmap or unregister): let the driver stop its queues, then unbind. */
  async mn_release(mn: mmu_notifier, _mm: mm_struct): Promise<void> {
    this.k.might_sleep("mn_release");
    const state = (mn as pasid_state_mn).state;
    const dev_state = state.device_state;
    const run_inv_ctx_cb = !state.invalid;
    if (run_inv_ctx_cb && dev_state.inv_ctx_cb) await dev_state.inv_ctx_cb(dev_state.pdev, state.pasid);
    await this.unbind_pasid(state);
  }

  // ---- page requests ---------------------------------------------------------------------------

  private set_pri_tag_status(state: pasid_state, tag: number, status: number): void {
    const flags = spin_lock_irqsave(state.lock);
    state.pri[tag]!.status = status;
    spin_unlock_irqrestore(state.lock, flags);
  }

  /**
   * finish_pri_tag(): one request of group `tag` is done. The last one of a group whose "last
   * request" has arrived sends COMPLETE_PPR with the group's status and resets the slot. The
   * command is queued with the PASID spinlock held.
   */
  finish_pri_tag(dev_state: device_state, state: pasid_state, tag: number): void {
    const flags = spin_lock_irqsave(state.lock);
    const q = state.pri[tag]!;
    if (atomic_dec_and_test(q.inflight) && q.finish) {
      this.amd.amd_iommu_complete_ppr(dev_state.pdev, state.pasid, q.status, tag);
      q.finish = false;
      q.status = PPR_SUCCESS;
    }
    spin_unlock_irqrestore(state.lock, flags);
  }

  /** handle_fault_error(): INVALID without a driver callback; else the callback decides. */
  private async handle_fault_error(f: fault): Promise<void> {
    const cb = f.dev_state.inv_ppr_cb;
    if (!cb) {
      this.set_pri_tag_status(f.state, f.tag, PPR_INVALID);
      return;
    }
    const status = await cb(f.dev_state.pdev, f.pasid, f.address, f.flags);
    switch (status) {
      case AMD_IOMMU_INV_PRI_RSP_SUCCESS:
        this.set_pri_tag_status(f.state, f.tag, PPR_SUCCESS);
        break;
      case AMD_IOMMU_INV_PRI_RSP_INVALID:
        this.set_pri_tag_status(f.state, f.tag, PPR_INVALID);
        break;
      case AMD_IOMMU_INV_PRI_RSP_FAIL:
        this.set_pri_tag_status(f.state, f.tag, PPR_FAILURE);
        break;
      default:
        this.k.BUG();
    }
  }

  /** access_error(): a requested right (EXEC/READ/WRITE) the VMA lacks. USER/GN/RSVD are not checked. */
  access_error(vma: vm_area_struct, f: fault): boolean {
    let requested = 0;
    if (f.flags & PPR_FAULT_EXEC) requested |= VM_EXEC;
    if (f.flags & PPR_FAULT_READ) requested |= VM_READ;
    if (f.flags & PPR_FAULT_WRITE) requested |= VM_WRITE;
    return (requested & ~vma.vm_flags) !== 0;
  }

  /**
   * do_fault() (iommu_wq worker, may sleep): USER → FAULT_FLAG_USER, WRITE → FAULT_FLAG_WRITE,
   * always FAULT_FLAG_REMOTE (EXEC is not turned into FAULT_FLAG_INSTRUCTION). mmap_lock is held
   * for reading around the VMA lookup and handle_mm_fault only; a missing VMA, an access the
   * VMA forbids or a VM_FAULT_ERROR goes to handle_fault_error. Then the group is finished.
   */
  private async do_fault(f: fault): Promise<void> {
    const mm = f.state.mm!;
    const address = f.address;
    let ret = VM_FAULT_ERROR;
    let flags = FAULT_FLAG_REMOTE;
    if (f.flags & PPR_FAULT_USER) flags |= FAULT_FLAG_USER;
    if (f.flags & PPR_FAULT_WRITE) flags |= FAULT_FLAG_WRITE;
    await mmap_read_lock(mm);
    const vma = find_extend_vma(mm, address);
    if (vma && address >= vma.vm_start && !this.access_error(vma, f)) ret = await handle_mm_fault(vma, address, flags, null);
    mmap_read_unlock(mm);
    if (ret & VM_FAULT_ERROR) await this.handle_fault_error(f);
    this.finish_pri_tag(f.dev_state, f.state, f.tag);
    this.put_pasid_state(f.state);
    this.slab.kfree(f);
  }

  /**
   * ppr_notifier() (atomic notifier chain; must not sleep). Unknown device → no response at
   * all; known device but unknown or invalid PASID → INVALID at once, untracked; otherwise the
   * request is counted in its group and a fault is queued. If the GFP_ATOMIC allocation fails
   * the request is finished right away, so a completed group answers with its status (normally
   * SUCCESS) and the device faults again.
   */
  ppr_notifier(_nb: notifier_block<amd_iommu_fault>, _e: number, iommu_fault: amd_iommu_fault): number {
    const tag = ppr_tag_index(iommu_fault.tag);
    const finish = ppr_tag_last(iommu_fault.tag);
    const seg_id = PCI_SBDF_TO_SEGID(iommu_fault.sbdf);
    const devid = PCI_SBDF_TO_DEVID(iommu_fault.sbdf);
    const pdev = pci_get_domain_bus_and_slot(this.pci, seg_id, PCI_BUS_NUM(devid), devid & 0xff);
    if (!pdev) return -ENODEV;
    let ret = NOTIFY_DONE;
    if (this.amd.amd_iommu_is_attach_deferred(pdev.dev)) {
      // kdump: the device is not initialised yet.
      this.amd.amd_iommu_complete_ppr(pdev, iommu_fault.pasid, PPR_INVALID, tag);
    } else {
      const dev_state = this.get_device_state(iommu_fault.sbdf);
      if (dev_state) {
        ret = this.ppr_queue_fault(dev_state, iommu_fault, tag, finish);
        // The lookup reference; the bind reference held through pasid_state keeps dev_state alive.
        this.put_device_state(dev_state);
      }
    }
    pci_dev_put(pdev);
    return ret;
  }

  private ppr_queue_fault(dev_state: device_state, iommu_fault: amd_iommu_fault, tag: number, finish: boolean): number {
    const state = this.get_pasid_state(dev_state, iommu_fault.pasid);
    if (!state || state.invalid) {
      // We know the device but not the PASID.
      this.amd.amd_iommu_complete_ppr(dev_state.pdev, iommu_fault.pasid, PPR_INVALID, tag);
      if (state) this.put_pasid_state(state);
      return NOTIFY_DONE;
    }
    const flags = spin_lock_irqsave(state.lock);
    atomic_inc(state.pri[tag]!.inflight);
    if (finish) state.pri[tag]!.finish = true;
    spin_unlock_irqrestore(state.lock, flags);
    const f = this.slab.kzalloc_obj(new fault(), SIZEOF_FAULT, GFP_ATOMIC, "ppr_notifier");
    if (!f) {
      // OOM: send success and let the device re-fault.
      this.finish_pri_tag(dev_state, state, tag);
      this.put_pasid_state(state);
      return NOTIFY_DONE;
    }
    f.dev_state = dev_state;
    f.address = iommu_fault.address;
    f.state = state; // the lookup reference now belongs to the fault
    f.tag = tag;
    f.finish = finish ? 1 : 0;
    f.pasid = iommu_fault.pasid;
    f.flags = iommu_fault.flags;
    INIT_WORK(f.work, () => this.do_fault(f), "do_fault");
    this.wqs.queue_work(this.iommu_wq!, f.work);
    return NOTIFY_OK;
  }

  // ---- the exported API ------------------------------------------------------------------------

  /**
   * amd_iommu_bind_pasid(): GCR3[pasid] = the task's page tables. -EINVAL for an unknown device
   * or a PASID beyond max_pasids; -ENOMEM for no mm, an occupied slot or no memory.
   */
  async amd_iommu_bind_pasid(pdev: pci_dev, pasid: number, task: task_struct): Promise<number> {
    this.k.might_sleep("amd_iommu_bind_pasid");
    if (!this.amd.amd_iommu_v2_supported()) return -ENODEV;
    const dev_state = this.get_device_state(this.amd.get_pci_sbdf_id(pdev));
    if (!dev_state) return -EINVAL;
    const ret = await this.bind_pasid_locked(dev_state, pasid, task);
    // On success the lookup reference stays: it is the bind reference.
    if (ret) this.put_device_state(dev_state);
    return ret;
  }

  private async bind_pasid_locked(dev_state: device_state, pasid: number, task: task_struct): Promise<number> {
    if (pasid < 0 || pasid >= dev_state.max_pasids) return -EINVAL;
    const state = this.slab.kzalloc_obj(new pasid_state(this.k, this.iommu_mn), SIZEOF_PASID_STATE, GFP_KERNEL, "amd_iommu_bind_pasid");
    if (!state) return -ENOMEM;
    atomic_set(state.count, 1);
    const mm = get_task_mm(task);
    state.mm = mm;
    state.device_state = dev_state;
    state.pasid = pasid;
    state.invalid = true; // valid only once everything is set up
    if (!mm) {
      this.free_pasid_state(state);
      return -ENOMEM;
    }
    let ret = await mmu_notifier_register(state.mn, mm);
    if (ret) {
      this.free_pasid_state(state);
      await mmput(mm);
      return ret;
    }
    ret = this.set_pasid_state(dev_state, state, pasid);
    if (!ret) {
      ret = this.amd.amd_iommu_domain_set_gcr3(dev_state.domain!, pasid, mm.pgd);
      if (ret) this.clear_pasid_state(dev_state, pasid);
    }
    if (ret) {
      await mmu_notifier_unregister(state.mn, mm);
      await mmput(mm);
      this.free_pasid_state(state);
      return ret;
    }
    state.invalid = false;
    // Drop the mm_users reference: the notifier's release tells us when the mm goes away.
    await mmput(mm);
    return 0;
  }

  /**
   * amd_iommu_unbind_pasid(): free the slot (new requests get INVALID), unregister the notifier
   * (runs mn_release if the mm is still there: callback, GCR3 clear, drain), then wait until no
   * queued fault holds the state and free it.
   */
  async amd_iommu_unbind_pasid(pdev: pci_dev, pasid: number): Promise<void> {
    this.k.might_sleep("amd_iommu_unbind_pasid");
    if (!this.amd.amd_iommu_v2_supported()) return;
    const dev_state = this.get_device_state(this.amd.get_pci_sbdf_id(pdev));
    if (!dev_state) return;
    const state = pasid >= 0 && pasid < dev_state.max_pasids ? this.get_pasid_state(dev_state, pasid) : null;
    if (state) {
      // Safe: the bind reference still holds it.
      this.put_pasid_state(state);
      this.clear_pasid_state(dev_state, state.pasid);
      await mmu_notifier_unregister(state.mn, state.mm!);
      await this.put_pasid_state_wait(state);
      // The bind reference.
      this.put_device_state(dev_state);
    }
    // The lookup reference.
    this.put_device_state(dev_state);
  }

  /**
   * amd_iommu_init_device(): a direct-mapped IOMMUv2 domain for `pasids` PASIDs, attached to the
   * device's group (which turns on PASID, PRI and ATS). -EBUSY if already initialised.
   */
  async amd_iommu_init_device(pdev: pci_dev, pasids: number): Promise<number> {
    this.k.might_sleep("amd_iommu_init_device");
    if (!this.amd.amd_iommu_v2_supported()) return -ENODEV;
    if (pasids <= 0 || pasids > PASID_MASK + 1) return -EINVAL;
    const sbdf = this.amd.get_pci_sbdf_id(pdev);
    const dev_state = this.slab.kzalloc_obj(new device_state(this.k), SIZEOF_DEVICE_STATE, GFP_KERNEL, "amd_iommu_init_device");
    if (!dev_state) return -ENOMEM;
    dev_state.pdev = pdev;
    dev_state.sbdf = sbdf;
    for (let tmp = pasids; (tmp - 1) & ~0x1ff; tmp >>>= 9) dev_state.pasid_levels++;
    atomic_set(dev_state.count, 1);
    dev_state.max_pasids = pasids;
    const root = get_zeroed_page(this.k, GFP_KERNEL);
    if (!root) {
      this.slab.kfree(dev_state);
      return -ENOMEM;
    }
    dev_state.states = new pasid_table(root);
    const ret = this.setup_domain(dev_state, pasids);
    if (ret) {
      free_page(this.k, root);
      this.slab.kfree(dev_state);
      return ret;
    }
    const flags = spin_lock_irqsave(this.state_lock);
    if (this.__get_device_state(sbdf)) {
      spin_unlock_irqrestore(this.state_lock, flags);
      this.core.iommu_domain_free(dev_state.domain!);
      free_page(this.k, root);
      this.slab.kfree(dev_state);
      return -EBUSY;
    }
    this.state_list.push(dev_state);
    spin_unlock_irqrestore(this.state_lock, flags);
    return 0;
  }

  /** The domain part of amd_iommu_init_device: allocate, direct-map, enable v2, attach the group. */
  private setup_domain(dev_state: device_state, pasids: number): number {
    const domain = this.core.iommu_domain_alloc();
    if (!domain) return -ENOMEM;
    dev_state.domain = domain;
    // See iommu_is_default_domain().
    domain.type = IOMMU_DOMAIN_IDENTITY;
    this.amd.amd_iommu_domain_direct_map(domain);
    let ret = this.amd.amd_iommu_domain_enable_v2(domain, pasids);
    if (!ret) {
      const group = this.core.iommu_group_get(dev_state.pdev.dev);
      ret = group ? this.core.iommu_attach_group(domain, group) : -EINVAL;
      this.core.iommu_group_put(group);
    }
    if (ret) this.core.iommu_domain_free(domain);
    return ret;
  }

  /** amd_iommu_free_device(): off the list first (its page requests then get no response), then down. */
  async amd_iommu_free_device(pdev: pci_dev): Promise<void> {
    if (!this.amd.amd_iommu_v2_supported()) return;
    const sbdf = this.amd.get_pci_sbdf_id(pdev);
    const flags = spin_lock_irqsave(this.state_lock);
    const dev_state = this.__get_device_state(sbdf);
    if (dev_state) this.state_list.splice(this.state_list.indexOf(dev_state), 1);
    spin_unlock_irqrestore(this.state_lock, flags);
    if (!dev_state) return;
    this.put_device_state(dev_state);
    await this.free_device_state(dev_state);
  }

  private set_cb(pdev: pci_dev, set: (d: device_state) => void): number {
    if (!this.amd.amd_iommu_v2_supported()) return -ENODEV;
    const sbdf = this.amd.get_pci_sbdf_id(pdev);
    const flags = spin_lock_irqsave(this.state_lock);
    const dev_state = this.__get_device_state(sbdf);
    if (dev_state) set(dev_state);
    spin_unlock_irqrestore(this.state_lock, flags);
    return dev_state ? 0 : -EINVAL;
  }

  /** amd_iommu_set_invalid_ppr_cb(): null clears it. */
  amd_iommu_set_invalid_ppr_cb(pdev: pci_dev, cb: amd_iommu_invalid_ppr_cb | null): number {
    return this.set_cb(pdev, (d) => (d.inv_ppr_cb = cb));
  }

  amd_iommu_set_invalidate_ctx_cb(pdev: pci_dev, cb: amd_iommu_invalidate_ctx | null): number {
    return this.set_cb(pdev, (d) => (d.inv_ctx_cb = cb));
  }

  // ---- module init / exit ------------------------------------------------------------------------

  /** amd_iommu_v2_init(): without IOMMUv2 hardware the module loads anyway, to export its symbols. */
  async init(): Promise<number> {
    if (!this.amd.amd_iommu_v2_supported()) {
      this.k.pr_info("AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.");
      return 0;
    }
    this.iommu_wq = this.wqs.alloc_workqueue("amd_iommu_v2", WQ_MEM_RECLAIM, 0);
    this.amd.amd_iommu_register_ppr_notifier(this.ppr_nb);
    this.k.pr_info("AMD-Vi: AMD IOMMUv2 loaded and initialized");
    return 0;
  }

  /** amd_iommu_v2_exit(): a device still initialised here is a driver bug (WARN), freed anyway. */
  async exit(): Promise<void> {
    if (!this.iommu_wq) return;
    this.amd.amd_iommu_unregister_ppr_notifier(this.ppr_nb);
    await this.wqs.flush_workqueue(this.iommu_wq);
    const flags = spin_lock_irqsave(this.state_lock);
    const freelist = this.state_list.splice(0);
    for (const dev_state of freelist) {
      this.k.WARN_ON_ONCE(true);
      this.put_device_state(dev_state);
    }
    spin_unlock_irqrestore(this.state_lock, flags);
    for (const dev_state of freelist) await this.free_device_state(dev_state);
    await this.wqs.destroy_workqueue(this.iommu_wq);
    this.iommu_wq = null;
  }
}

/** The loadable module ("amd_iommu_v2.ko"). */
export const amd_iommu_v2_module: ModuleDef = {
  name: "amd_iommu_v2",
  cls: AmdIommuV2,
  description: "AMD IOMMUv2 driver (PASID binding, PPR handling; Linux ≤6.6)",
};
