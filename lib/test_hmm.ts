// Mirrors lib/test_hmm.c (Linux 6.8): the HMM test module ("dmirror"), a pretend device that
// mirrors the address space of whoever opens /dev/hmm_dmirrorN and owns ZONE_DEVICE memory to
// migrate pages into. It is built only on the public driver API — exported kernel functions
// and the services its constructor is injected with — exactly as an out-of-tree module would be,
// which is what makes it kemu's proof that alternative drivers plug in (ARCHITECTURE.md §6.5).
//
// Devices 0 and 1 hold MEMORY_DEVICE_PRIVATE memory: struct pages in a free physical range with
// no CPU mapping, each backed by a real system page holding the "device" data. Devices 2 and 3
// hold MEMORY_DEVICE_COHERENT memory and exist only when the module is loaded with the physical
// addresses of reserved memory (spm_addr_dev0/spm_addr_dev1), as in Linux.
//
// Each open file is one mirror of the opener's mm: a device page table keyed by virtual pfn,
// kept coherent by an interval notifier over the whole address space and filled by
// hmm_range_fault() under the notifier sequence protocol.

import { inject, injectable } from "tsyringe";
import type { Kernel } from "../kernel/kernel.ts";
import type { KernelModule, ModuleDef, ModuleParams } from "../kernel/module/main.ts";
import { CHRDEV, DRIVER_CORE, IOMEM, KERNEL, MEMREMAP, SLAB } from "../kernel/tokens.ts";
import type { CharDevices } from "../fs/char_dev.ts";
import { cdev, cdev_init } from "../fs/char_dev.ts";
import type { DriverCore } from "../drivers/base/core.ts";
import { dev_set_name, device } from "../drivers/base/core.ts";
import type { ResourceTree } from "../kernel/resource.ts";
import { resource_size } from "../kernel/resource.ts";
import type { Slab } from "../mm/slab_common.ts";
import type { MemRemap } from "../mm/memremap.ts";
import { zone_device_page_init } from "../mm/memremap.ts";
import { default_llseek } from "../fs/libfs.ts";
import type { file, file_operations, inode } from "../include/linux/fs.ts";
import { MAJOR, MINOR, MKDEV, type dev_t } from "../include/linux/kdev_t.ts";
import type { mm_struct, page, vm_area_struct } from "../include/linux/mm_types.ts";
import {
  PAGE_SHIFT, PAGE_SIZE, VM_READ, VM_WRITE, VM_FAULT_SIGBUS, is_zero_pfn, put_page, type vm_fault,
} from "../include/linux/mm.ts";
import {
  MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, dev_pagemap, is_device_coherent_page, is_device_private_page,
  is_zone_device_page, range_len, type dev_pagemap_ops,
} from "../include/linux/memremap.ts";
import { GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, __GFP_NOFAIL, __GFP_ZERO } from "../include/linux/gfp_types.ts";
import { copy_highpage, clear_highpage, memcpy_from_page, memcpy_to_page } from "../include/linux/highmem.ts";
import { mmap_read_lock, mmap_read_unlock } from "../include/linux/mmap_lock.ts";
import { mutex, mutex_lock, mutex_trylock, mutex_unlock } from "../kernel/locking/mutex.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../kernel/locking/spinlock.ts";
import { msecs_to_jiffies, time_after } from "../kernel/time/timekeeping.ts";
import { mmget_not_zero, mmput } from "../kernel/fork.ts";
import { pfn_to_page, page_to_pfn } from "../mm/sparse.ts";
import { alloc_page, alloc_page_vma, nr_free_pages, __free_page } from "../mm/page_alloc.ts";
import { lock_page, unlock_page } from "../mm/filemap.ts";
import { vma_lookup } from "../mm/mmap.ts";
import { vm_insert_page } from "../mm/memory.ts";
import { make_device_exclusive } from "../mm/rmap.ts";
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migrate_device_finalize, migrate_device_pages,
  migrate_device_range, migrate_pfn, migrate_pfn_to_page, migrate_vma, migrate_vma_finalize, migrate_vma_pages,
  migrate_vma_setup, mpfn_set, mpfn_test,
} from "../mm/migrate_device.ts";
import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_RANGE_DEFAULT_TIMEOUT, hmm_pfn_is_error, hmm_pfn_is_valid,
  hmm_pfn_is_write, hmm_pfn_to_map_order, hmm_pfn_to_pfn, hmm_range, hmm_range_fault,
} from "../mm/hmm.ts";
import {
  MMU_NOTIFY_MIGRATE, mmu_interval_notifier, mmu_interval_notifier_insert, mmu_interval_notifier_remove,
  mmu_interval_read_begin, mmu_interval_read_retry, mmu_interval_set_seq, mmu_notifier_range_blockable,
  type mmu_interval_notifier_ops, type mmu_notifier_range,
} from "../mm/mmu_notifier.ts";
import { copy_from_user, copy_to_user } from "../include/linux/uaccess.ts";
import { PMD_SHIFT, PUD_SHIFT } from "../arch/x86/include/asm/pgtable_types.ts";
import { EBUSY, EFAULT, EINVAL, ENOENT, ENOMEM, EPERM } from "../include/uapi/asm-generic/errno.ts";
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_MEMORY_DEVICE_COHERENT,
  HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_ZERO, HMM_DMIRROR_READ,
  HMM_DMIRROR_RELEASE, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_WRITE, hmm_dmirror_cmd,
} from "../include/uapi/linux/test_hmm_uapi.ts";
import { layout_decode, layout_encode } from "../include/uapi/struct_layout.ts";

export const DMIRROR_NDEVICES = 4;
export const DEVMEM_CHUNK_SIZE = 256 * 1024 * 1024;
/** sizeof(struct dmirror) and sizeof(struct dmirror_chunk) on x86-64, for slab accounting. */
const SIZEOF_DMIRROR = 136;
const SIZEOF_DMIRROR_CHUNK = 272;
/** Pages handled per hmm_range_fault()/migrate_vma round (the kernel's on-stack pfns[64]). */
const PFNS_PER_ROUND = 64;

/** 2^64: where unsigned long arithmetic wraps. */
const ULONG_WRAP = 2 ** 64;
/** ULONG_MAX & PAGE_MASK: the last page-aligned address (approximated within 2^53 precision). */
const ADDRESS_SPACE_LENGTH = ULONG_WRAP - PAGE_SIZE;

// ---- the device page table: an xarray of tagged struct page pointers -------------------------

const DPT_XA_TAG_ATOMIC = 1;
const DPT_XA_TAG_WRITE = 3;

/** An xarray value: a struct page pointer with a 2-bit tag in its low bits (xa_tag_pointer). */
interface dpt_entry {
  readonly page: page;
  readonly tag: number;
}

function xa_tag_pointer(p: page, tag: number): dpt_entry {
  return { page: p, tag };
}

function xa_untag_pointer(entry: dpt_entry | undefined): page | null {
  return entry?.page ?? null;
}

function xa_pointer_tag(entry: dpt_entry | undefined): number {
  return entry?.tag ?? 0;
}

// ---- the driver's objects ---------------------------------------------------------------------

/** struct dmirror_bounce: the "device" buffer data moves through. */
interface dmirror_bounce {
  ptr: Uint8Array;
  size: number;
  addr: number;
  cpages: number;
}

/**
 * struct dmirror_interval: an interval notifier and the mirror it belongs to. container_of()
 * becomes a subclass, so a callback's `mni` leads back to its mirror.
 */
class dmirror_interval extends mmu_interval_notifier {
  constructor(readonly dmirror: dmirror) {
    super();
  }
}

/** struct dmirror: one open file, mirroring the opener's address space. */
class dmirror {
  /** The device page table: virtual pfn → tagged page. Holds no page references. */
  readonly pt = new Map<number, dpt_entry>();
  readonly notifier = new dmirror_interval(this);
  readonly mutex: mutex;

  constructor(
    readonly mdevice: dmirror_device,
    k: Kernel,
  ) {
    this.mutex = new mutex(k, "&dmirror->mutex");
  }
}

/** struct dmirror_chunk: a pagemap of device memory. container_of(pgmap) is a downcast. */
class dmirror_chunk extends dev_pagemap {
  mdevice!: dmirror_device;
  /** The chunk is being evicted: freed pages must not go back on the free list. */
  remove = false;
}

/** struct dmirror_device: one /dev/hmm_dmirrorN. */
class dmirror_device {
  readonly cdevice = new cdev();
  readonly device = new device();
  zone_device_type = 0;
  devmem_chunks: dmirror_chunk[] = [];
  readonly devmem_lock: mutex;
  /** Device pages handed out / given back (the kernel's debugging counters). */
  calloc = 0;
  cfree = 0;
  /** Free device pages, linked through page->zone_device_data. */
  free_pages: page | null = null;
  readonly lock: spinlock_t;

  constructor(k: Kernel) {
    this.devmem_lock = new mutex(k, "&mdevice->devmem_lock");
    this.lock = new spinlock_t(k, "&mdevice->lock");
  }
}

function dmirror_page_to_chunk(p: page): dmirror_chunk {
  return p.pgmap as dmirror_chunk;
}

function dmirror_page_to_device(p: page): dmirror_device {
  return dmirror_page_to_chunk(p).mdevice;
}

/** BACKING_PAGE(): where a device page's data lives — its system page, or itself if coherent. */
function BACKING_PAGE(p: page): page {
  return is_device_private_page(p) ? (p.zone_device_data as page) : p;
}

function dmirror_is_private_zone(mdevice: dmirror_device): boolean {
  return mdevice.zone_device_type === HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
}

function dmirror_select_device(dm: dmirror): number {
  return dmirror_is_private_zone(dm.mdevice) ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
}

function pfn_of(addr: number): number {
  return Math.floor(addr / PAGE_SIZE);
}

/** What a command's range ends at, or null when addr + npages * PAGE_SIZE wraps past 2^64. */
function cmd_end(cmd: hmm_dmirror_cmd_v): number | null {
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  return end >= ULONG_WRAP ? null : end;
}

type hmm_dmirror_cmd_v = { addr: number; ptr: number; npages: number; cpages: number; faults: number };

// ---- the module ------------------------------------------------------------------------------

@injectable()
export class hmm_dmirror implements KernelModule {
  params?: ModuleParams;
  private dmirror_dev: dev_t = 0;
  private readonly dmirror_devices: dmirror_device[] = [];

  /** The one set of file operations; every method reaches back to this module instance. */
  private readonly dmirror_fops: file_operations = {
    owner: "test_hmm",
    open: (i, f) => this.dmirror_fops_open(i, f),
    release: (i, f) => this.dmirror_fops_release(i, f),
    mmap: (f, vma) => this.dmirror_fops_mmap(f, vma),
    unlocked_ioctl: (f, cmd, arg) => this.dmirror_fops_unlocked_ioctl(f, cmd, arg),
    llseek: default_llseek,
  };

  private readonly dmirror_devmem_ops: dev_pagemap_ops = {
    page_free: (p) => this.dmirror_devmem_free(p),
    migrate_to_ram: (vmf) => this.dmirror_devmem_fault(vmf),
  };

  private readonly dmirror_min_ops: mmu_interval_notifier_ops = {
    invalidate: (mni, range, cur_seq) => this.dmirror_interval_invalidate(mni as dmirror_interval, range, cur_seq),
  };

  private readonly dmirror_mrn_ops: mmu_interval_notifier_ops = {
    invalidate: (mni, range, cur_seq) => this.dmirror_snapshot_invalidate(mni as dmirror_interval, range, cur_seq),
  };

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(CHRDEV) private readonly chrdev: CharDevices,
    @inject(DRIVER_CORE) private readonly core: DriverCore,
    @inject(MEMREMAP) private readonly memremap: MemRemap,
    @inject(IOMEM) private readonly iomem: ResourceTree,
    @inject(SLAB) private readonly slab: Slab,
  ) {}

  private param(name: string): number {
    return Number(this.params?.[name] ?? 0);
  }

  // ---- open / release: one mirror per open file ---------------------------------------------

  private async dmirror_fops_open(inode: inode, filp: file): Promise<number> {
    // kemu's inode carries no i_cdev: the minor names the device, as the cdev region maps it.
    const mdevice = this.dmirror_devices[MINOR(inode.i_rdev) - MINOR(this.dmirror_dev)];
    const mm = this.k.current.mm as mm_struct | null;
    if (!mdevice || !mm) return -EINVAL;
    const dm = this.slab.kzalloc_obj(new dmirror(mdevice, this.k), SIZEOF_DMIRROR, GFP_KERNEL);
    if (!dm) return -ENOMEM;
    const ret = await mmu_interval_notifier_insert(dm.notifier, mm, 0, ADDRESS_SPACE_LENGTH, this.dmirror_min_ops);
    if (ret) {
      this.slab.kfree(dm);
      return ret;
    }
    filp.private_data = dm;
    return 0;
  }

  private async dmirror_fops_release(_inode: inode, filp: file): Promise<number> {
    const dm = filp.private_data as dmirror;
    await mmu_interval_notifier_remove(dm.notifier);
    dm.pt.clear();
    this.slab.kfree(dm);
    return 0;
  }

  // ---- keeping the mirror coherent --------------------------------------------------------

  /**
   * dmirror_do_update(): drop the mirror entries of the range; no references are held. Like the
   * kernel's xa_for_each_range(.., end >> PAGE_SHIFT), the page at `end` goes too (harmless).
   */
  private dmirror_do_update(dm: dmirror, start: number, end: number): void {
    const first = pfn_of(start);
    const last = pfn_of(end);
    for (const pfn of [...dm.pt.keys()]) if (pfn >= first && pfn <= last) dm.pt.delete(pfn);
  }

  private async dmirror_interval_invalidate(mni: dmirror_interval, range: mmu_notifier_range, cur_seq: number): Promise<boolean> {
    const dm = mni.dmirror;
    // The migration code updates the mirror itself for its own pages.
    if (range.event === MMU_NOTIFY_MIGRATE && range.owner === dm.mdevice) return true;
    if (mmu_notifier_range_blockable(range)) await mutex_lock(dm.mutex);
    else if (!mutex_trylock(dm.mutex)) return false;
    mmu_interval_set_seq(mni, cur_seq);
    this.dmirror_do_update(dm, range.start, range.end);
    mutex_unlock(dm.mutex);
    return true;
  }

  /** dmirror_do_fault(): store what hmm_range_fault() found; called with the mirror mutex held. */
  private dmirror_do_fault(dm: dmirror, range: hmm_range): number {
    const k = this.k;
    for (let pfn = pfn_of(range.start), i = 0; pfn < pfn_of(range.end); pfn++, i++) {
      const e = range.hmm_pfns[i]!;
      // A fault was requested, so success means every entry is valid.
      k.WARN_ON(hmm_pfn_is_error(e));
      k.WARN_ON(!hmm_pfn_is_valid(e));
      // kemu: a page of this device (hmm_range_fault reports it as is) is stored as its backing
      // page, as MIGRATE_TO_DEV stores it. Linux stores the device-private struct page, which
      // READ/WRITE would then kmap although it has no CPU mapping.
      const p = BACKING_PAGE(pfn_to_page(k, hmm_pfn_to_pfn(e)));
      let entry = xa_tag_pointer(p, 0);
      if (hmm_pfn_is_write(e)) entry = xa_tag_pointer(p, DPT_XA_TAG_WRITE);
      else if (k.WARN_ON(hmm_pfn_is_write(range.default_flags))) return -EFAULT;
      dm.pt.set(pfn, entry);
    }
    return 0;
  }

  /** dmirror_range_fault(): hmm_range_fault() under the interval sequence protocol. */
  private async dmirror_range_fault(dm: dmirror, range: hmm_range): Promise<number> {
    const mm = dm.notifier.mm!;
    const timeout = this.k.jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
    for (;;) {
      if (time_after(this.k.jiffies, timeout)) return -EBUSY;
      range.notifier_seq = await mmu_interval_read_begin(range.notifier);
      await mmap_read_lock(mm);
      const ret = await hmm_range_fault(range);
      mmap_read_unlock(mm);
      if (ret === -EBUSY) continue;
      if (ret) return ret;
      await mutex_lock(dm.mutex);
      if (!mmu_interval_read_retry(range.notifier, range.notifier_seq)) break;
      mutex_unlock(dm.mutex);
    }
    const ret = this.dmirror_do_fault(dm, range);
    mutex_unlock(dm.mutex);
    return ret;
  }

  /** dmirror_fault(): populate the mirror for [start, end), 64 pages at a time. */
  private async dmirror_fault(dm: dmirror, start: number, end: number, write: boolean): Promise<number> {
    const mm = dm.notifier.mm!;
    const range = new hmm_range();
    range.notifier = dm.notifier;
    range.pfn_flags_mask = 0;
    range.default_flags = HMM_PFN_REQ_FAULT + (write ? HMM_PFN_REQ_WRITE : 0);
    range.dev_private_owner = dm.mdevice;
    // The mm is the mirrored process's: pin its address space first.
    if (!mmget_not_zero(mm)) return 0;
    let ret = 0;
    for (let addr = start; addr < end; addr = range.end) {
      range.start = addr;
      range.end = Math.min(addr + PFNS_PER_ROUND * PAGE_SIZE, end);
      range.hmm_pfns = new Array<number>((range.end - range.start) / PAGE_SIZE).fill(0);
      ret = await this.dmirror_range_fault(dm, range);
      if (ret) break;
    }
    await mmput(mm);
    return ret;
  }

  // ---- READ and WRITE: the device touching memory through its mirror ------------------------

  /** dmirror_bounce_init(): a vmalloc()ed bounce buffer; -ENOMEM when it cannot be had. */
  private dmirror_bounce_init(addr: number, size: number): dmirror_bounce | number {
    // vmalloc() fails beyond the free memory there is; kemu also stops at what one host buffer holds.
    if (size > nr_free_pages(this.k) * PAGE_SIZE || size > 2 ** 31) return -ENOMEM;
    return { ptr: new Uint8Array(size), size, addr, cpages: 0 };
  }

  /** dmirror_do_read(): copy mirrored pages into the bounce buffer; -ENOENT at the first hole. */
  private dmirror_do_read(dm: dmirror, start: number, end: number, bounce: dmirror_bounce): number {
    let off = Math.floor((start - bounce.addr) / PAGE_SIZE) * PAGE_SIZE;
    for (let pfn = pfn_of(start); pfn < pfn_of(end); pfn++) {
      const p = xa_untag_pointer(dm.pt.get(pfn));
      if (!p) return -ENOENT;
      memcpy_from_page(bounce.ptr.subarray(off, off + PAGE_SIZE), p, 0, PAGE_SIZE);
      off += PAGE_SIZE;
      bounce.cpages++;
    }
    return 0;
  }

  private async dmirror_read(dm: dmirror, cmd: hmm_dmirror_cmd_v): Promise<number> {
    let start = cmd.addr;
    const end = cmd_end(cmd);
    if (end === null) return -EINVAL;
    const bounce = this.dmirror_bounce_init(start, end - start);
    if (typeof bounce === "number") return bounce;
    let ret: number;
    for (;;) {
      await mutex_lock(dm.mutex);
      ret = this.dmirror_do_read(dm, start, end, bounce);
      mutex_unlock(dm.mutex);
      if (ret !== -ENOENT) break;
      start = cmd.addr + bounce.cpages * PAGE_SIZE;
      ret = await this.dmirror_fault(dm, start, end, false);
      if (ret) break;
      cmd.faults++;
    }
    if (ret === 0 && (await copy_to_user(this.k, cmd.ptr, bounce.ptr, bounce.size))) ret = -EFAULT;
    cmd.cpages = bounce.cpages;
    return ret;
  }

  /** dmirror_do_write(): needs write-tagged entries; -ENOENT at the first that is not. */
  private dmirror_do_write(dm: dmirror, start: number, end: number, bounce: dmirror_bounce): number {
    let off = Math.floor((start - bounce.addr) / PAGE_SIZE) * PAGE_SIZE;
    for (let pfn = pfn_of(start); pfn < pfn_of(end); pfn++) {
      const entry = dm.pt.get(pfn);
      const p = xa_untag_pointer(entry);
      if (!p || xa_pointer_tag(entry) !== DPT_XA_TAG_WRITE) return -ENOENT;
      memcpy_to_page(p, 0, bounce.ptr.subarray(off, off + PAGE_SIZE), PAGE_SIZE);
      off += PAGE_SIZE;
      bounce.cpages++;
    }
    return 0;
  }

  private async dmirror_write(dm: dmirror, cmd: hmm_dmirror_cmd_v): Promise<number> {
    let start = cmd.addr;
    const end = cmd_end(cmd);
    if (end === null) return -EINVAL;
    const bounce = this.dmirror_bounce_init(start, end - start);
    if (typeof bounce === "number") return bounce;
    if (await copy_from_user(this.k, bounce.ptr, cmd.ptr, bounce.size)) {
      cmd.cpages = bounce.cpages;
      return -EFAULT;
    }
    let ret: number;
    for (;;) {
      await mutex_lock(dm.mutex);
      ret = this.dmirror_do_write(dm, start, end, bounce);
      mutex_unlock(dm.mutex);
      if (ret !== -ENOENT) break;
      start = cmd.addr + bounce.cpages * PAGE_SIZE;
      ret = await this.dmirror_fault(dm, start, end, true);
      if (ret) break;
      cmd.faults++;
    }
    cmd.cpages = bounce.cpages;
    return ret;
  }

  // ---- device memory: chunks of ZONE_DEVICE pages and their free list --------------------------

  /** dmirror_allocate_chunk(): one more 256 MiB pagemap; optionally hands out its first page. */
  private async dmirror_allocate_chunk(mdevice: dmirror_device, want_page: boolean): Promise<page | null | number> {
    const devmem = this.slab.kzalloc_obj(new dmirror_chunk(), SIZEOF_DMIRROR_CHUNK, GFP_KERNEL);
    if (!devmem) return -ENOMEM;
    let res_claimed = false;
    switch (mdevice.zone_device_type) {
      case HMM_DMIRROR_MEMORY_DEVICE_PRIVATE: {
        const res = this.iomem.request_free_mem_region(DEVMEM_CHUNK_SIZE, "hmm_dmirror");
        if (typeof res === "number") {
          this.slab.kfree(devmem);
          return res;
        }
        res_claimed = true;
        devmem.range = { start: res.start, end: res.start + resource_size(res) - 1 };
        devmem.type = MEMORY_DEVICE_PRIVATE;
        break;
      }
      case HMM_DMIRROR_MEMORY_DEVICE_COHERENT: {
        // Device 2 uses spm_addr_dev0, device 3 spm_addr_dev1.
        const start = MINOR(mdevice.cdevice.dev) - MINOR(this.dmirror_dev) === 2 ? this.param("spm_addr_dev0") : this.param("spm_addr_dev1");
        devmem.range = { start, end: start + DEVMEM_CHUNK_SIZE - 1 };
        devmem.type = MEMORY_DEVICE_COHERENT;
        break;
      }
      default:
        this.slab.kfree(devmem);
        return -EINVAL;
    }
    devmem.nr_range = 1;
    devmem.ops = this.dmirror_devmem_ops;
    devmem.owner = mdevice;

    await mutex_lock(mdevice.devmem_lock);
    // memremap_pages() returns the start of range 0, or -errno.
    const ret = await this.memremap.memremap_pages(devmem, 0);
    if (ret < 0) {
      mutex_unlock(mdevice.devmem_lock);
      if (res_claimed) this.iomem.release_mem_region(devmem.range.start, range_len(devmem.range));
      this.slab.kfree(devmem);
      return ret;
    }
    devmem.mdevice = mdevice;
    mdevice.devmem_chunks.push(devmem);
    mutex_unlock(mdevice.devmem_lock);

    const pfn_first = pfn_of(devmem.range.start);
    const pfn_last = pfn_first + range_len(devmem.range) / PAGE_SIZE;
    const count = mdevice.devmem_chunks.length;
    const mb = DEVMEM_CHUNK_SIZE / (1024 * 1024);
    this.k.pr_info(`added new ${mb} MB chunk (total ${count} chunks, ${count * mb} MB) PFNs [0x${pfn_first.toString(16)} 0x${pfn_last.toString(16)})`);

    spin_lock(mdevice.lock);
    // Pushed last to first, so the free list hands out the chunk's pages in ascending order.
    for (let pfn = pfn_last - 1; pfn >= pfn_first; pfn--) {
      const p = pfn_to_page(this.k, pfn);
      p.zone_device_data = mdevice.free_pages;
      mdevice.free_pages = p;
    }
    let got: page | null = null;
    if (want_page) {
      got = mdevice.free_pages!;
      mdevice.free_pages = got.zone_device_data as page | null;
      mdevice.calloc++;
    }
    spin_unlock(mdevice.lock);
    return got;
  }

  /** dmirror_devmem_alloc_page(): a device page, locked and referenced (zone_device_page_init). */
  private async dmirror_devmem_alloc_page(mdevice: dmirror_device): Promise<page | null> {
    let rpage: page | null = null;
    // A private device page is a stand-in: its data lives in a real system page.
    if (dmirror_is_private_zone(mdevice)) {
      rpage = alloc_page(this.k, GFP_HIGHUSER);
      if (!rpage) return null;
    }
    let dpage: page;
    spin_lock(mdevice.lock);
    if (mdevice.free_pages) {
      dpage = mdevice.free_pages;
      mdevice.free_pages = dpage.zone_device_data as page | null;
      mdevice.calloc++;
      spin_unlock(mdevice.lock);
    } else {
      spin_unlock(mdevice.lock);
      const got = await this.dmirror_allocate_chunk(mdevice, true);
      if (got === null || typeof got === "number") {
        if (rpage) __free_page(rpage);
        return null;
      }
      dpage = got;
    }
    zone_device_page_init(dpage);
    dpage.zone_device_data = rpage;
    return dpage;
  }

  /** page_free: the last reference to a device page went away. */
  private dmirror_devmem_free(p: page): void {
    const rpage = BACKING_PAGE(p);
    if (rpage !== p) __free_page(rpage);
    const mdevice = dmirror_page_to_device(p);
    spin_lock(mdevice.lock);
    // Back to the free list, unless its chunk is being torn down.
    if (!dmirror_page_to_chunk(p).remove) {
      mdevice.cfree++;
      p.zone_device_data = mdevice.free_pages;
      mdevice.free_pages = p;
    }
    spin_unlock(mdevice.lock);
  }

  // ---- migration to the device -------------------------------------------------------------

  private async dmirror_migrate_alloc_and_copy(args: migrate_vma, dm: dmirror): Promise<void> {
    const k = this.k;
    const dst = args.dst!;
    for (let i = 0; i < args.npages; i++) {
      const src = args.src![i]!;
      if (!mpfn_test(src, MIGRATE_PFN_MIGRATE)) continue;
      // A null source is a pte_none() hole or the read-only zero page.
      const spage = migrate_pfn_to_page(k, src);
      if (spage && k.WARN(is_zone_device_page(spage), `page already in device spage pfn: 0x${page_to_pfn(spage).toString(16)}`)) continue;
      const dpage = await this.dmirror_devmem_alloc_page(dm.mdevice);
      if (!dpage) continue;
      const rpage = BACKING_PAGE(dpage);
      if (spage) copy_highpage(rpage, spage);
      else clear_highpage(rpage);
      // A real device would point zone_device_data at its mirror; dmirror keeps the backing
      // page there, and the backing page points at the mirror.
      rpage.zone_device_data = dm;
      dst[i] = migrate_pfn(page_to_pfn(dpage));
      if (mpfn_test(src, MIGRATE_PFN_WRITE) || (!spage && args.vma!.vm_flags & VM_WRITE)) dst[i] = mpfn_set(dst[i]!, MIGRATE_PFN_WRITE);
    }
  }

  /** Map the pages that migrated into the mirror: their backing page, write-tagged if writable. */
  private async dmirror_migrate_finalize_and_map(args: migrate_vma, dm: dmirror): Promise<number> {
    const src = args.src!;
    const dst = args.dst!;
    await mutex_lock(dm.mutex);
    for (let pfn = pfn_of(args.start), i = 0; pfn < pfn_of(args.end); pfn++, i++) {
      if (!mpfn_test(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      const dpage = migrate_pfn_to_page(this.k, dst[i]!);
      if (!dpage) continue;
      // Store the page that holds the data, so the mirror never deals with device-private pages.
      const backing = BACKING_PAGE(dpage);
      dm.pt.set(pfn, xa_tag_pointer(backing, mpfn_test(dst[i]!, MIGRATE_PFN_WRITE) ? DPT_XA_TAG_WRITE : 0));
    }
    mutex_unlock(dm.mutex);
    return 0;
  }

  /** The per-VMA, at-most-64-page windows of [start, end); -EINVAL where no readable VMA is. */
  private async for_each_window(mm: mm_struct, start: number, end: number, fn: (vma: vm_area_struct, addr: number, next: number) => Promise<number>): Promise<number> {
    for (let addr = start, next: number; addr < end; addr = next) {
      const vma = vma_lookup(mm, addr);
      if (!vma || !(vma.vm_flags & VM_READ)) return -EINVAL;
      next = Math.min(end, addr + PFNS_PER_ROUND * PAGE_SIZE, vma.vm_end);
      const ret = await fn(vma, addr, next);
      if (ret) return ret;
    }
    return 0;
  }

  private new_migrate_vma(dm: dmirror, vma: vm_area_struct, start: number, end: number, flags: number): migrate_vma {
    const args = new migrate_vma();
    const n = (end - start) / PAGE_SIZE;
    args.vma = vma;
    args.src = new Array<number>(n).fill(0);
    args.dst = new Array<number>(n).fill(0);
    args.start = start;
    args.end = end;
    args.pgmap_owner = dm.mdevice;
    args.flags = flags;
    return args;
  }

  private async dmirror_migrate_to_device(dm: dmirror, cmd: hmm_dmirror_cmd_v): Promise<number> {
    const start = cmd.addr;
    const end = cmd_end(cmd);
    const mm = dm.notifier.mm!;
    if (end === null) return -EINVAL;
    if (!mmget_not_zero(mm)) return -EINVAL;
    await mmap_read_lock(mm);
    const ret = await this.for_each_window(mm, start, end, async (vma, addr, next) => {
      const args = this.new_migrate_vma(dm, vma, addr, next, MIGRATE_VMA_SELECT_SYSTEM);
      const r = await migrate_vma_setup(args);
      if (r) return r;
      await this.dmirror_migrate_alloc_and_copy(args, dm);
      await migrate_vma_pages(args);
      await this.dmirror_migrate_finalize_and_map(args, dm);
      migrate_vma_finalize(args);
      return 0;
    });
    mmap_read_unlock(mm);
    await mmput(mm);
    if (ret) return ret;
    // Read the range back through the mirror: a page that did not migrate is missing (-ENOENT).
    return this.dmirror_read_back(dm, cmd, start, end);
  }

  /** Copy the mirror's view of [start, end) to cmd.ptr; cpages = pages found. */
  private async dmirror_read_back(dm: dmirror, cmd: hmm_dmirror_cmd_v, start: number, end: number): Promise<number> {
    const bounce = this.dmirror_bounce_init(start, end - start);
    if (typeof bounce === "number") return bounce;
    await mutex_lock(dm.mutex);
    let ret = this.dmirror_do_read(dm, start, end, bounce);
    mutex_unlock(dm.mutex);
    if (ret === 0 && (await copy_to_user(this.k, cmd.ptr, bounce.ptr, bounce.size))) ret = -EFAULT;
    cmd.cpages = bounce.cpages;
    return ret;
  }

  // ---- migration back to system memory ----------------------------------------------------

  /** For every migrating device page: a system page, the mirror entry dropped, the data copied. */
  private dmirror_devmem_fault_alloc_and_copy(args: migrate_vma, dm: dmirror): Promise<number> {
    return this.copy_to_system_pages(args.src!, args.dst!, args.npages, (i) => {
      const addr = args.start + i * PAGE_SIZE;
      const dpage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, args.vma!, addr);
      if (dpage) dm.pt.delete(pfn_of(addr));
      return dpage;
    });
  }

  /** Shared by CPU faults, MIGRATE_TO_SYS and eviction: allocate, lock, copy, set dst. */
  private async copy_to_system_pages(src: number[], dst: number[], npages: number, alloc: (i: number) => page | null): Promise<number> {
    const k = this.k;
    for (let i = 0; i < npages; i++) {
      let spage = migrate_pfn_to_page(k, src[i]!);
      if (!spage || !mpfn_test(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      if (k.WARN_ON(!is_device_private_page(spage) && !is_device_coherent_page(spage))) continue;
      spage = BACKING_PAGE(spage);
      const dpage = alloc(i);
      if (!dpage) continue;
      await lock_page(dpage);
      copy_highpage(dpage, spage);
      dst[i] = migrate_pfn(page_to_pfn(dpage));
      if (mpfn_test(src[i]!, MIGRATE_PFN_WRITE)) dst[i] = mpfn_set(dst[i]!, MIGRATE_PFN_WRITE);
    }
    return 0;
  }

  private dmirror_successful_migrated_pages(args: migrate_vma): number {
    let cpages = 0;
    for (let i = 0; i < args.npages; i++) {
      if (mpfn_test(args.src![i]!, MIGRATE_PFN_VALID) && mpfn_test(args.src![i]!, MIGRATE_PFN_MIGRATE)) cpages++;
    }
    return cpages;
  }

  private async dmirror_migrate_to_system(dm: dmirror, cmd: hmm_dmirror_cmd_v): Promise<number> {
    const end = cmd_end(cmd);
    const mm = dm.notifier.mm!;
    if (end === null) return -EINVAL;
    if (!mmget_not_zero(mm)) return -EINVAL;
    cmd.cpages = 0;
    await mmap_read_lock(mm);
    const ret = await this.for_each_window(mm, cmd.addr, end, async (vma, addr, next) => {
      const args = this.new_migrate_vma(dm, vma, addr, next, dmirror_select_device(dm));
      const r = await migrate_vma_setup(args);
      if (r) return r;
      await this.dmirror_devmem_fault_alloc_and_copy(args, dm);
      await migrate_vma_pages(args);
      cmd.cpages += this.dmirror_successful_migrated_pages(args);
      migrate_vma_finalize(args);
      return 0;
    });
    mmap_read_unlock(mm);
    await mmput(mm);
    return ret;
  }

  /** migrate_to_ram: a CPU touched a device-private page; bring exactly that page back. */
  private async dmirror_devmem_fault(vmf: vm_fault): Promise<number> {
    // The backing page points at the mirror that migrated it (see alloc_and_copy).
    const rpage = vmf.page!.zone_device_data as page;
    const dm = rpage.zone_device_data as dmirror;
    const args = this.new_migrate_vma(dm, vmf.vma, vmf.address, vmf.address + PAGE_SIZE, dmirror_select_device(dm));
    args.fault_page = vmf.page;
    if (await migrate_vma_setup(args)) return VM_FAULT_SIGBUS;
    const ret = await this.dmirror_devmem_fault_alloc_and_copy(args, dm);
    if (ret) return ret;
    await migrate_vma_pages(args);
    // alloc_and_copy already dropped the mirror entry: nothing more to finalize on the device.
    migrate_vma_finalize(args);
    return 0;
  }

  // ---- SNAPSHOT: the CPU page table as the device would see it, one byte per page -------------

  private dmirror_mkentry(dm: dmirror, entry: number): number {
    if (hmm_pfn_is_error(entry)) return HMM_DMIRROR_PROT_ERROR;
    if (!hmm_pfn_is_valid(entry)) return HMM_DMIRROR_PROT_NONE;
    const p = pfn_to_page(this.k, hmm_pfn_to_pfn(entry));
    let perm: number;
    if (is_device_private_page(p)) {
      perm = dm.mdevice === dmirror_page_to_device(p) ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
    } else if (is_device_coherent_page(p)) {
      perm = dm.mdevice === dmirror_page_to_device(p) ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
    } else if (is_zero_pfn(page_to_pfn(p))) {
      perm = HMM_DMIRROR_PROT_ZERO;
    } else {
      perm = HMM_DMIRROR_PROT_NONE;
    }
    perm |= hmm_pfn_is_write(entry) ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
    const order = hmm_pfn_to_map_order(entry);
    if (order + PAGE_SHIFT === PMD_SHIFT) perm |= HMM_DMIRROR_PROT_PMD;
    else if (order + PAGE_SHIFT === PUD_SHIFT) perm |= HMM_DMIRROR_PROT_PUD;
    return perm;
  }

  /** A snapshot's temporary notifier: any invalidation just bumps the sequence. */
  private async dmirror_snapshot_invalidate(mni: dmirror_interval, range: mmu_notifier_range, cur_seq: number): Promise<boolean> {
    const dm = mni.dmirror;
    if (mmu_notifier_range_blockable(range)) await mutex_lock(dm.mutex);
    else if (!mutex_trylock(dm.mutex)) return false;
    mmu_interval_set_seq(mni, cur_seq);
    mutex_unlock(dm.mutex);
    return true;
  }

  private async dmirror_range_snapshot(dm: dmirror, range: hmm_range, perm: Uint8Array): Promise<number> {
    const mm = dm.notifier.mm!;
    const notifier = new dmirror_interval(dm);
    const timeout = this.k.jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
    range.notifier = notifier;
    let ret = await mmu_interval_notifier_insert(notifier, mm, range.start, range.end - range.start, this.dmirror_mrn_ops);
    if (ret) return ret;
    for (;;) {
      if (time_after(this.k.jiffies, timeout)) {
        ret = -EBUSY;
        break;
      }
      range.notifier_seq = await mmu_interval_read_begin(notifier);
      await mmap_read_lock(mm);
      ret = await hmm_range_fault(range);
      mmap_read_unlock(mm);
      if (ret === -EBUSY) continue;
      if (ret) break;
      await mutex_lock(dm.mutex);
      if (mmu_interval_read_retry(notifier, range.notifier_seq)) {
        mutex_unlock(dm.mutex);
        continue;
      }
      for (let i = 0; i < range.hmm_pfns.length; i++) perm[i] = this.dmirror_mkentry(dm, range.hmm_pfns[i]!);
      mutex_unlock(dm.mutex);
      break;
    }
    await mmu_interval_notifier_remove(notifier);
    return ret;
  }

  private async dmirror_snapshot(dm: dmirror, cmd: hmm_dmirror_cmd_v): Promise<number> {
    const mm = dm.notifier.mm!;
    const end = cmd_end(cmd);
    if (end === null) return -EINVAL;
    if (!mmget_not_zero(mm)) return -EINVAL;
    const range = new hmm_range();
    range.dev_private_owner = dm.mdevice;
    let ret = 0;
    // A temporary notifier per window catches invalidations even where other notifiers overlap.
    for (let addr = cmd.addr, uptr = cmd.ptr, next: number; addr < end; addr = next) {
      next = Math.min(addr + PFNS_PER_ROUND * PAGE_SIZE, end);
      const n = (next - addr) / PAGE_SIZE;
      range.start = addr;
      range.end = next;
      range.hmm_pfns = new Array<number>(n).fill(0);
      const perm = new Uint8Array(n);
      ret = await this.dmirror_range_snapshot(dm, range, perm);
      if (ret) break;
      if (await copy_to_user(this.k, uptr, perm, n)) {
        ret = -EFAULT;
        break;
      }
      cmd.cpages += n;
      uptr += n;
    }
    await mmput(mm);
    return ret;
  }

  // ---- EXCLUSIVE: device atomics through device-exclusive CPU entries -----------------------

  private async dmirror_atomic_map(addr: number, p: page, dm: dmirror): Promise<void> {
    await mutex_lock(dm.mutex);
    dm.pt.set(pfn_of(addr), xa_tag_pointer(p, DPT_XA_TAG_ATOMIC));
    mutex_unlock(dm.mutex);
  }

  private async dmirror_exclusive(dm: dmirror, cmd: hmm_dmirror_cmd_v): Promise<number> {
    const start = cmd.addr;
    const end = cmd_end(cmd);
    const mm = dm.notifier.mm!;
    if (end === null) return -EINVAL;
    if (!mmget_not_zero(mm)) return -EINVAL;
    let ret = 0;
    await mmap_read_lock(mm);
    for (let addr = start; addr < end; addr += PAGE_SIZE) {
      const p = await make_device_exclusive(mm, addr, null);
      if (typeof p === "number") {
        ret = p;
        break;
      }
      await this.dmirror_atomic_map(addr, p, dm);
      unlock_page(p);
      put_page(p);
    }
    mmap_read_unlock(mm);
    await mmput(mm);
    if (ret) return ret;
    // Return the data for verification.
    return this.dmirror_read_back(dm, cmd, start, end);
  }

  /** Any entry still tagged ATOMIC means a CPU access failed to revoke exclusivity. */
  private dmirror_check_atomic(dm: dmirror, start: number, end: number): number {
    for (let pfn = pfn_of(start); pfn < pfn_of(end); pfn++) {
      if (xa_pointer_tag(dm.pt.get(pfn)) === DPT_XA_TAG_ATOMIC) return -EPERM;
    }
    return 0;
  }

  // ---- RELEASE and unload: evict every device page back to system memory ---------------------

  private async dmirror_device_evict_chunk(chunk: dmirror_chunk): Promise<void> {
    const start_pfn = pfn_of(chunk.range.start);
    const npages = pfn_of(chunk.range.end) - start_pfn + 1;
    const src = new Array<number>(npages).fill(0);
    const dst = new Array<number>(npages).fill(0);
    await migrate_device_range(this.k, src, start_pfn, npages);
    await this.copy_to_system_pages(src, dst, npages, () => alloc_page(this.k, GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL));
    await migrate_device_pages(this.k, src, dst, npages);
    migrate_device_finalize(this.k, src, dst, npages);
  }

  /** dmirror_remove_free_pages(): unlink the chunk's free pages so they are not handed out again. */
  private dmirror_remove_free_pages(devmem: dmirror_chunk): void {
    const mdevice = devmem.mdevice;
    let prev: page | null = null;
    for (let p = mdevice.free_pages; p; p = p.zone_device_data as page | null) {
      if (dmirror_page_to_chunk(p) !== devmem) {
        prev = p;
        continue;
      }
      if (prev) prev.zone_device_data = p.zone_device_data;
      else mdevice.free_pages = p.zone_device_data as page | null;
    }
  }

  private async dmirror_device_remove_chunks(mdevice: dmirror_device): Promise<void> {
    await mutex_lock(mdevice.devmem_lock);
    for (const devmem of mdevice.devmem_chunks) {
      spin_lock(mdevice.lock);
      devmem.remove = true;
      this.dmirror_remove_free_pages(devmem);
      spin_unlock(mdevice.lock);

      await this.dmirror_device_evict_chunk(devmem);
      await this.memremap.memunmap_pages(devmem);
      if (devmem.type === MEMORY_DEVICE_PRIVATE) this.iomem.release_mem_region(devmem.range.start, range_len(devmem.range));
      this.slab.kfree(devmem);
    }
    mdevice.devmem_chunks = [];
    mdevice.free_pages = null;
    mutex_unlock(mdevice.devmem_lock);
  }

  // ---- ioctl, mmap ------------------------------------------------------------------------

  private async dmirror_fops_unlocked_ioctl(filp: file, command: number, arg: number): Promise<number> {
    const dm = filp.private_data as dmirror | null;
    if (!dm) return -EINVAL;
    const raw = new Uint8Array(hmm_dmirror_cmd.size);
    if (await copy_from_user(this.k, raw, arg, raw.length)) return -EFAULT;
    const cmd: hmm_dmirror_cmd_v = layout_decode(hmm_dmirror_cmd, raw);
    if (cmd.addr % PAGE_SIZE) return -EINVAL;
    // addr >= addr + (npages << PAGE_SHIFT), in 64-bit arithmetic: an empty or wrapping range.
    if (cmd.npages === 0 || cmd_end(cmd) === null) return -EINVAL;
    cmd.cpages = 0;
    cmd.faults = 0;

    let ret: number;
    switch (command) {
      case HMM_DMIRROR_READ:
        ret = await this.dmirror_read(dm, cmd);
        break;
      case HMM_DMIRROR_WRITE:
        ret = await this.dmirror_write(dm, cmd);
        break;
      case HMM_DMIRROR_MIGRATE_TO_DEV:
        ret = await this.dmirror_migrate_to_device(dm, cmd);
        break;
      case HMM_DMIRROR_MIGRATE_TO_SYS:
        ret = await this.dmirror_migrate_to_system(dm, cmd);
        break;
      case HMM_DMIRROR_EXCLUSIVE:
        ret = await this.dmirror_exclusive(dm, cmd);
        break;
      case HMM_DMIRROR_CHECK_EXCLUSIVE:
        ret = this.dmirror_check_atomic(dm, cmd.addr, cmd_end(cmd)!);
        break;
      case HMM_DMIRROR_SNAPSHOT:
        ret = await this.dmirror_snapshot(dm, cmd);
        break;
      case HMM_DMIRROR_RELEASE:
        await this.dmirror_device_remove_chunks(dm.mdevice);
        ret = 0;
        break;
      default:
        return -EINVAL;
    }
    if (ret) return ret;
    if (await copy_to_user(this.k, arg, layout_encode(hmm_dmirror_cmd, cmd), hmm_dmirror_cmd.size)) return -EFAULT;
    return 0;
  }

  /** mmap of the device file: zeroed kernel pages, not anonymous memory (never migratable). */
  private async dmirror_fops_mmap(_file: file, vma: vm_area_struct): Promise<number> {
    for (let addr = vma.vm_start; addr < vma.vm_end; addr += PAGE_SIZE) {
      const p = alloc_page(this.k, GFP_KERNEL | __GFP_ZERO);
      if (!p) return -ENOMEM;
      const ret = await vm_insert_page(vma, addr, p);
      if (ret) {
        __free_page(p);
        return ret;
      }
      put_page(p);
    }
    return 0;
  }

  // ---- module init / exit ----------------------------------------------------------------

  private async dmirror_device_init(mdevice: dmirror_device, id: number): Promise<number> {
    const dev = MKDEV(MAJOR(this.dmirror_dev), MINOR(this.dmirror_dev) + id);
    cdev_init(mdevice.cdevice, this.dmirror_fops);
    mdevice.cdevice.owner = "test_hmm";
    this.core.device_initialize(mdevice.device);
    mdevice.device.devt = dev;
    dev_set_name(mdevice.device, `hmm_dmirror${id}`);
    const ret = await this.chrdev.cdev_device_add(mdevice.cdevice, mdevice.device);
    if (ret) return ret;
    // The first chunk of free ZONE_DEVICE pages. (Linux leaves the device node behind if this
    // fails; kemu takes it down again so a failed insmod leaves nothing registered.)
    const got = await this.dmirror_allocate_chunk(mdevice, false);
    if (typeof got !== "number") return 0;
    await this.chrdev.cdev_device_del(mdevice.cdevice, mdevice.device);
    return got;
  }

  private async dmirror_device_remove(mdevice: dmirror_device): Promise<void> {
    await this.dmirror_device_remove_chunks(mdevice);
    await this.chrdev.cdev_device_del(mdevice.cdevice, mdevice.device);
  }

  /** hmm_dmirror_init(). */
  async init(): Promise<number> {
    const dev = this.chrdev.alloc_chrdev_region(0, DMIRROR_NDEVICES, "HMM_DMIRROR");
    if (dev < 0) return dev;
    this.dmirror_dev = dev;
    const types = [HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE];
    if (this.param("spm_addr_dev0") && this.param("spm_addr_dev1")) {
      types.push(HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_COHERENT);
    }
    for (const [id, type] of types.entries()) {
      const mdevice = new dmirror_device(this.k);
      mdevice.zone_device_type = type;
      const ret = await this.dmirror_device_init(mdevice, id);
      if (ret) {
        for (const d of this.dmirror_devices.splice(0).reverse()) await this.dmirror_device_remove(d);
        this.chrdev.unregister_chrdev_region(this.dmirror_dev, DMIRROR_NDEVICES);
        return ret;
      }
      this.dmirror_devices.push(mdevice);
    }
    this.k.pr_info("HMM test module loaded. This is only for testing HMM.");
    return 0;
  }

  /** hmm_dmirror_exit(). */
  async exit(): Promise<void> {
    for (const mdevice of this.dmirror_devices.splice(0)) await this.dmirror_device_remove(mdevice);
    this.chrdev.unregister_chrdev_region(this.dmirror_dev, DMIRROR_NDEVICES);
  }
}

/** The loadable module: `insmod("test_hmm")`, or with spm_addr_dev0/1 for the coherent devices. */
export const test_hmm_module: ModuleDef = {
  name: "test_hmm",
  cls: hmm_dmirror,
  params: { spm_addr_dev0: 0, spm_addr_dev1: 0 },
  description: "HMM (Heterogeneous Memory Management) test module",
};
