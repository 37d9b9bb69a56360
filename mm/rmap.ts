// Mirrors mm/rmap.c (Linux 6.8), the core reverse-map: anon_vma setup across fork and split,
// adding/removing page mappings (mapcount, anon identity, PG_anon_exclusive), rmap_walk() over
// the VMAs that may map a page, and page_vma_mapped_walk() to find the PTE mapping a page in
// one VMA. Device bits (try_to_migrate, make_device_exclusive, remove_migration_ptes) build on
// these.
//
// kemu simplification: one anon_vma "family" per original anonymous VMA. Every VMA forked or
// split from it is recorded on the root's rb_root set (the kernel links them through
// anon_vma_chains); a walk visits the whole family and checks each PTE. File pages: the
// mapping's i_mmap set (kept by the filesystem's vm_ops open/close) is walked when present.

import { anon_vma, type page, type vm_area_struct, type mm_struct } from "../include/linux/mm_types.ts";
import { EFAULT, ENOMEM } from "../include/uapi/asm-generic/errno.ts";
import { PAGE_SIZE, PageAnon } from "../include/linux/mm.ts";
import { ClearPageAnonExclusive, SetPageAnonExclusive, PageAnonExclusive } from "../include/linux/page-flags.ts";
import { ptep_get, pte_present, pte_pfn } from "../arch/x86/include/asm/pgtable.ts";
import { is_swap_pte, pte_to_swp_entry, is_migration_entry, is_device_exclusive_entry, is_device_private_entry, swp_offset_pfn } from "../include/linux/swapops.ts";
import { mm_find_pmd, pte_offset_map_lock, pte_unmap_unlock } from "./pgtable-generic.ts";
import type { spinlock_t } from "../kernel/locking/spinlock.ts";
import { EOPNOTSUPP, EFAULT as EFAULT_ } from "../include/uapi/asm-generic/errno.ts";
import { PAGE_ALIGN_DOWN, put_page, page_mapped, FOLL_GET, FOLL_WRITE } from "../include/linux/mm.ts";
import { is_zone_device_page } from "../include/linux/mmzone.ts";
import { is_device_private_page, is_device_coherent_page } from "../include/linux/memremap.ts";
import { SetPageDirty } from "../include/linux/page-flags.ts";
import { pte_write, pte_dirty, pte_young, pte_soft_dirty, pte_uffd_wp, set_pte_at, pte_val_hex } from "../arch/x86/include/asm/pgtable.ts";
import { pte_swp_mksoft_dirty, pte_swp_soft_dirty, pte_swp_mkuffd_wp, pte_swp_uffd_wp } from "../arch/x86/include/asm/pgtable_64.ts";
import {
  swp_entry_to_pte, is_writable_device_private_entry, make_writable_migration_entry,
  make_readable_exclusive_migration_entry, make_readable_migration_entry, make_migration_entry_young,
  make_migration_entry_dirty, make_writable_device_exclusive_entry, type swp_entry_t,
} from "../include/linux/swapops.ts";
import { follow_pte, ptep_clear_flush } from "./pgtable-generic.ts";
import { mmap_assert_locked } from "../include/linux/mmap_lock.ts";
import {
  mmu_notifier_range, mmu_notifier_range_init, mmu_notifier_range_init_owner, mmu_notifier_invalidate_range_start,
  mmu_notifier_invalidate_range_end, MMU_NOTIFY_CLEAR, MMU_NOTIFY_EXCLUSIVE,
} from "./mmu_notifier.ts";
import { get_user_pages_remote } from "./gup.ts";
import { lock_page_killable, unlock_page } from "./filemap.ts";
import { vma_lookup } from "./mmap.ts";
import { ftrace } from "../include/linux/ftrace.ts";
import { trace_set_migration_pte } from "../include/trace/events/migrate.ts";

/** RMAP_EXCLUSIVE: the page is exclusive to this process (page_add_anon_rmap flags). */
export const RMAP_NONE = 0;
export const RMAP_EXCLUSIVE = 1 << 0;

function anon_root(av: anon_vma): anon_vma {
  return av.root ?? av;
}

function link_vma(vma: vm_area_struct, av: anon_vma): void {
  vma.anon_vma = av;
  anon_root(av).rb_root.add(vma);
}

/** anon_vma_prepare(): make sure the VMA has an anon_vma before the first anon page. */
export function anon_vma_prepare(vma: vm_area_struct): number {
  if (vma.anon_vma) return 0;
  link_vma(vma, new anon_vma());
  return 0;
}

/** anon_vma_clone(dst, src): a split-off VMA shares the anon_vma of its origin. */
export function anon_vma_clone(dst: vm_area_struct, src: vm_area_struct): number {
  if (src.anon_vma) link_vma(dst, src.anon_vma);
  return 0;
}

/** anon_vma_fork(vma, pvma): the child VMA gets its own anon_vma in the parent's family. */
export function anon_vma_fork(vma: vm_area_struct, pvma: vm_area_struct): number {
  vma.anon_vma = null;
  if (!pvma.anon_vma) return 0;
  link_vma(vma, new anon_vma(anon_root(pvma.anon_vma)));
  return vma.anon_vma ? 0 : -ENOMEM;
}

/** unlink_anon_vmas(): the VMA leaves its family (munmap, exit, merge). */
export function unlink_anon_vmas(vma: vm_area_struct): void {
  if (!vma.anon_vma) return;
  anon_root(vma.anon_vma).rb_root.delete(vma);
  vma.anon_vma = null;
}

// ---- adding and removing mappings ------------------------------------------------------------

function __page_set_anon_rmap(p: page, vma: vm_area_struct, address: number, exclusive: boolean): void {
  p.mapping = vma.anon_vma;
  p.index = (address - vma.vm_start) / PAGE_SIZE + vma.vm_pgoff;
  if (exclusive) SetPageAnonExclusive(p);
}

/** folio_add_new_anon_rmap(): a freshly allocated page's first (exclusive) mapping. */
export function page_add_new_anon_rmap(p: page, vma: vm_area_struct, address: number): void {
  p._mapcount = 0;
  __page_set_anon_rmap(p, vma, address, true);
}
export const folio_add_new_anon_rmap = page_add_new_anon_rmap;

/** page_add_anon_rmap(page, vma, address, flags): another mapping of an anon page. */
export function page_add_anon_rmap(p: page, vma: vm_area_struct, address: number, flags: number): void {
  const first = ++p._mapcount === 0;
  if (first || !PageAnon(p)) __page_set_anon_rmap(p, vma, address, false);
  if (flags & RMAP_EXCLUSIVE) SetPageAnonExclusive(p);
}
export const folio_add_anon_rmap_pte = page_add_anon_rmap;

/** page_add_file_rmap(): a page-cache page gains a mapping. */
export function page_add_file_rmap(p: page, _vma: vm_area_struct, _compound: boolean): void {
  p._mapcount++;
}
export const folio_add_file_rmap_pte = page_add_file_rmap;

/** page_dup_file_rmap() / page_dup_rmap(): fork copies a mapping. */
export function page_dup_rmap(p: page, _compound: boolean): void {
  p._mapcount++;
}

/**
 * page_try_dup_anon_rmap(): fork shares an anon page with the child; it is no longer
 * exclusive. kemu has no long-term pins, so sharing never fails.
 */
export function page_try_dup_anon_rmap(p: page, _compound: boolean, _src_vma: vm_area_struct): number {
  if (PageAnonExclusive(p)) ClearPageAnonExclusive(p);
  p._mapcount++;
  return 0;
}

/** page_remove_rmap() / folio_remove_rmap_pte(): one mapping went away. */
export function page_remove_rmap(p: page, _vma: vm_area_struct, _compound: boolean): void {
  p._mapcount--;
  if (p._mapcount < -1) {
    p.zone.zone_pgdat.k.WARN(true, `page_remove_rmap: mapcount underflow on pfn 0x${p.pfn.toString(16)}`);
    p._mapcount = -1;
  }
}
export function folio_remove_rmap_pte(p: page, _pg: page, vma: vm_area_struct): void {
  page_remove_rmap(p, vma, false);
}

// ---- walking the mappings of a page -----------------------------------------------------------

/** vma_address(page, vma): where the page would be mapped in vma, or -EFAULT. */
export function vma_address(p: page, vma: vm_area_struct): number {
  const addr = vma.vm_start + (p.index - vma.vm_pgoff) * PAGE_SIZE;
  return addr >= vma.vm_start && addr < vma.vm_end ? addr : -EFAULT;
}

export interface rmap_walk_control {
  arg?: unknown;
  /** Return false to stop the walk. */
  rmap_one(p: page, vma: vm_area_struct, address: number, arg: unknown): boolean;
  /** Stop early once this says the work is done (e.g. the page is no longer mapped). */
  done?(p: page): boolean;
  invalid_vma?(vma: vm_area_struct, arg: unknown): boolean;
}

/** The VMAs that may map `p`, live: its anon family, or the file mapping's i_mmap. */
function mapping_vmas(p: page): ReadonlySet<vm_area_struct> | null {
  const m = p.mapping;
  if (!m) return null;
  if (m.kind === "anon") return anon_root(m).rb_root;
  return (m as { i_mmap?: Set<vm_area_struct> }).i_mmap ?? null;
}

/** The VMAs that may map `p`, as a snapshot for walks that sleep between VMAs. */
export function candidate_vmas(p: page): vm_area_struct[] {
  const vmas = mapping_vmas(p);
  return vmas ? [...vmas] : [];
}

/**
 * rmap_walk(page, rwc): call rmap_one for every VMA where the page may be mapped. It does not
 * sleep, so the set cannot change under it (the kernel holds the anon_vma / i_mmap lock).
 */
export function rmap_walk(p: page, rwc: rmap_walk_control): void {
  const vmas = mapping_vmas(p);
  if (!vmas) return;
  for (const vma of vmas) {
    if (rwc.invalid_vma?.(vma, rwc.arg)) continue;
    const addr = vma_address(p, vma);
    if (addr < 0) continue;
    if (!rwc.rmap_one(p, vma, addr, rwc.arg)) break;
    if (rwc.done?.(p)) break;
  }
}

// page_vma_mapped_walk flags
export const PVMW_SYNC = 1 << 0;
export const PVMW_MIGRATION = 1 << 1;

/** struct page_vma_mapped_walk (order-0 pages only: nr_pages is 1). */
export class page_vma_mapped_walk {
  pmd: number | null = null;
  pte: number | null = null;
  ptl: spinlock_t | null = null;
  readonly nr_pages = 1;
  constructor(
    readonly pfn: number,
    readonly vma: vm_area_struct,
    public address: number,
    readonly flags: number,
  ) {}

  get mm(): mm_struct {
    return this.vma.vm_mm;
  }
}

/** DEFINE_FOLIO_VMA_WALK(name, folio, vma, address, flags). */
export function DEFINE_PAGE_VMA_WALK(p: page, vma: vm_area_struct, address: number, flags: number): page_vma_mapped_walk {
  return new page_vma_mapped_walk(p.pfn, vma, address, flags);
}

/** check_pte(): does the entry at pvmw.pte map pvmw.pfn the way the flags ask? */
function check_pte(pvmw: page_vma_mapped_walk): boolean {
  const v = ptep_get(pvmw.mm.k, pvmw.pte!);
  let pfn: number;
  if (pvmw.flags & PVMW_MIGRATION) {
    if (!is_swap_pte(v)) return false;
    const e = pte_to_swp_entry(v);
    if (!is_migration_entry(e) && !is_device_exclusive_entry(e)) return false;
    pfn = swp_offset_pfn(e);
  } else if (is_swap_pte(v)) {
    const e = pte_to_swp_entry(v);
    if (!is_device_private_entry(e) && !is_device_exclusive_entry(e)) return false;
    pfn = swp_offset_pfn(e);
  } else {
    if (!pte_present(v)) return false;
    pfn = pte_pfn(v);
  }
  return pfn - pvmw.pfn >= 0 && pfn - pvmw.pfn < pvmw.nr_pages;
}

export function page_vma_mapped_walk_done(pvmw: page_vma_mapped_walk): void {
  if (pvmw.pte !== null && pvmw.ptl) pte_unmap_unlock(pvmw.pte, pvmw.ptl);
  pvmw.pte = null;
  pvmw.ptl = null;
}

/**
 * page_vma_mapped_walk(pvmw) (the kernel function; the struct keeps the kernel name): true with pvmw.pte locked when the page is mapped at
 * pvmw.address; the next call releases it and returns false (one PTE per order-0 page).
 */
export function page_vma_mapped_walk_next(pvmw: page_vma_mapped_walk): boolean {
  if (pvmw.pte !== null) {
    page_vma_mapped_walk_done(pvmw);
    return false;
  }
  const pmd = mm_find_pmd(pvmw.mm, pvmw.address);
  if (pmd === null) return false;
  const l = pte_offset_map_lock(pvmw.mm, pmd, pvmw.address);
  if (!l) return false;
  pvmw.pmd = pmd;
  pvmw.pte = l.pte;
  pvmw.ptl = l.ptl;
  if (check_pte(pvmw)) return true;
  page_vma_mapped_walk_done(pvmw);
  return false;
}

// ---- device bits: try_to_migrate, make_device_exclusive ---------------------------------------

/**
 * The migration PTE that stands for one mapping of `p` while it moves: writable if the old
 * mapping was, readable-exclusive for an exclusive anon page, carrying the old A/D, soft-dirty
 * and uffd-wp bits. Shared by try_to_migrate_one() and migrate_vma_collect_pmd().
 */
export function make_migration_pte(p: page, pteval: ReturnType<typeof ptep_get>, anon_exclusive: boolean): ReturnType<typeof ptep_get> {
  const present = pte_present(pteval);
  const writable = present ? pte_write(pteval) : is_writable_device_private_entry(pte_to_swp_entry(pteval));
  let entry: swp_entry_t;
  if (writable) entry = make_writable_migration_entry(p.pfn);
  else if (anon_exclusive) entry = make_readable_exclusive_migration_entry(p.pfn);
  else entry = make_readable_migration_entry(p.pfn);
  if (present) {
    if (pte_young(pteval)) entry = make_migration_entry_young(entry);
    if (pte_dirty(pteval)) entry = make_migration_entry_dirty(entry);
  }
  let swp = swp_entry_to_pte(entry);
  if (present ? pte_soft_dirty(pteval) : pte_swp_soft_dirty(pteval)) swp = pte_swp_mksoft_dirty(swp);
  if (present ? pte_uffd_wp(pteval) : pte_swp_uffd_wp(pteval)) swp = pte_swp_mkuffd_wp(swp);
  return swp;
}

/**
 * try_to_migrate_one(): replace the mapping of `p` in `vma` by a migration entry, inside an
 * MMU_NOTIFY_CLEAR window (no owner), dropping the mapping's rmap and reference.
 */
async function try_to_migrate_one(p: page, vma: vm_area_struct, address: number): Promise<boolean> {
  const mm = vma.vm_mm;
  using _ = ftrace(mm.k, "try_to_migrate_one");
  const range = new mmu_notifier_range();
  mmu_notifier_range_init(range, MMU_NOTIFY_CLEAR, 0, mm, address, address + PAGE_SIZE);
  await mmu_notifier_invalidate_range_start(range);
  const pvmw = DEFINE_PAGE_VMA_WALK(p, vma, address, 0);
  while (page_vma_mapped_walk_next(pvmw)) {
    const anon_exclusive = PageAnon(p) && PageAnonExclusive(p);
    const pteval = ptep_clear_flush(vma, pvmw.address, pvmw.pte!);
    if (pte_present(pteval) && pte_dirty(pteval)) SetPageDirty(p);
    // folio_try_share_anon_rmap_pte(): kemu has no GUP pins, so sharing never fails.
    if (anon_exclusive) ClearPageAnonExclusive(p);
    const swp_pte = make_migration_pte(p, pteval, anon_exclusive);
    set_pte_at(mm, pvmw.address, pvmw.pte!, swp_pte);
    if (trace_set_migration_pte.enabled) trace_set_migration_pte.trace(mm.k, { addr: pvmw.address, pte: pte_val_hex(swp_pte), order: 0 });
    page_remove_rmap(p, vma, false);
    put_page(p);
  }
  await mmu_notifier_invalidate_range_end(range);
  return true;
}

/** try_to_migrate(): every remaining mapping of the locked page becomes a migration entry. */
export async function try_to_migrate(p: page, _flags = 0): Promise<void> {
  using _ = ftrace(p.zone.zone_pgdat.k, "try_to_migrate");
  if (is_zone_device_page(p) && !is_device_private_page(p) && !is_device_coherent_page(p)) return;
  // rmap_walk() with a sleeping rmap_one: the notifier window may block.
  for (const vma of candidate_vmas(p)) {
    if (!page_mapped(p)) break;
    const addr = vma_address(p, vma);
    if (addr >= 0) await try_to_migrate_one(p, vma, addr);
  }
}

/**
 * make_device_exclusive() (6.15 form): fault the page in writable, lock it, and replace its PTE
 * with a device-exclusive entry inside an MMU_NOTIFY_EXCLUSIVE window, so a device may do
 * atomics until the CPU touches it again. Returns the locked, referenced page or -errno.
 * The entry keeps the mapping's reference (its rmap is dropped, as in ≤6.14).
 */
export async function make_device_exclusive(mm: mm_struct, addr: number, owner: unknown): Promise<page | number> {
  mmap_assert_locked(mm);
  addr = PAGE_ALIGN_DOWN(addr);
  const range = new mmu_notifier_range();
  mmu_notifier_range_init_owner(range, MMU_NOTIFY_EXCLUSIVE, 0, mm, addr, addr + PAGE_SIZE, owner);
  for (;;) {
    const pages: page[] = [];
    const got = await get_user_pages_remote(mm, addr, 1, FOLL_GET | FOLL_WRITE, pages);
    if (got < 0) return got;
    if (got === 0) return -EFAULT_;
    const p = pages[0]!;
    if (!PageAnon(p)) {
      put_page(p);
      return -EOPNOTSUPP;
    }
    const ret = await lock_page_killable(p);
    if (ret) {
      put_page(p);
      return ret;
    }
    await mmu_notifier_invalidate_range_start(range);
    if (exclusive_one(mm, addr, p)) {
      await mmu_notifier_invalidate_range_end(range);
      return p;
    }
    // The PTE changed under us (migrated, write-protected): start over.
    await mmu_notifier_invalidate_range_end(range);
    unlock_page(p);
    put_page(p);
  }
}

/** Swaps a present writable PTE mapping `p` for a device-exclusive entry; false if it changed. */
function exclusive_one(mm: mm_struct, addr: number, p: page): boolean {
  const vma = vma_lookup(mm, addr);
  const l = follow_pte(mm, addr);
  if (!vma || !l) return false;
  try {
    const cur = ptep_get(mm.k, l.pte);
    if (!pte_present(cur) || pte_pfn(cur) !== p.pfn || !pte_write(cur)) return false;
    const pte = ptep_clear_flush(vma, addr, l.pte);
    if (pte_dirty(pte)) SetPageDirty(p);
    let swp = swp_entry_to_pte(make_writable_device_exclusive_entry(p.pfn));
    if (pte_soft_dirty(pte)) swp = pte_swp_mksoft_dirty(swp);
    set_pte_at(mm, addr, l.pte, swp);
    page_remove_rmap(p, vma, false);
    return true;
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
}
