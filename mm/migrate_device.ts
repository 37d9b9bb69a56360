// Mirrors mm/migrate_device.c (Linux 6.8; the 6.1–6.14 baseline of ../shared/reference/mm.md):
// migrate_vma_setup/pages/finalize for a driver moving a VA range between system RAM and device
// memory, and migrate_device_range/pages/finalize for eviction by pfn. The pages of one migration
// stay locked and unmapped (migration entries) from setup to finalize.

import { EINVAL } from "../include/uapi/asm-generic/errno.ts";
import type { mm_struct, page, vm_area_struct } from "../include/linux/mm_types.ts";
import { MM_ANONPAGES } from "../include/linux/mm_types.ts";
import {
  PAGE_SIZE, PAGE_ALIGN_DOWN, VM_HUGETLB, VM_SPECIAL, VM_WRITE, get_page, get_page_unless_zero, put_page,
  page_count, page_mapcount, page_mapped, page_mapping, vma_is_anonymous, is_zero_pfn, PageAnon,
} from "../include/linux/mm.ts";
import { is_zone_device_page } from "../include/linux/mmzone.ts";
import { is_device_private_page, is_device_coherent_page } from "../include/linux/memremap.ts";
import {
  PageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, __SetPageUptodate,
} from "../include/linux/page-flags.ts";
import {
  ptep_get, pmdp_get, pmd_none, pmd_trans_huge, pte_none, pte_present, pte_pfn, pte_write, pte_dirty,
  ptep_get_and_clear, set_pte_at, mk_pte, pte_mkwrite, pte_mkdirty, pgd_offset, pte_val_hex,
} from "../arch/x86/include/asm/pgtable.ts";
import {
  pte_to_swp_entry, swp_entry_to_pte, is_device_private_entry, is_writable_device_private_entry,
  pfn_swap_entry_to_page, make_writable_device_private_entry, make_readable_device_private_entry,
} from "../include/linux/swapops.ts";
import {
  p4d_alloc, pud_alloc, pmd_alloc, pte_alloc, pte_offset_map_lock, pte_unmap_unlock, ptep_clear_flush,
} from "./pgtable-generic.ts";
import { walk_page_range, mm_walk, type mm_walk_ops } from "./pagewalk.ts";
import { flush_tlb_range } from "../arch/x86/mm/tlb.ts";
import { pfn_to_page } from "./sparse.ts";
import { vm_normal_page, inc_mm_counter } from "./memory.ts";
import {
  anon_vma_prepare, page_add_new_anon_rmap, page_remove_rmap, try_to_migrate, make_migration_pte,
} from "./rmap.ts";
import { trylock_page, unlock_page } from "./filemap.ts";
import { lru_add_drain, lru_cache_add } from "./swap.ts";
import {
  remove_migration_ptes, migrate_folio_extra, MIGRATEPAGE_SUCCESS, folio_isolate_lru, folio_putback_lru,
} from "./migrate.ts";
import {
  mmu_notifier_range, mmu_notifier_range_init_owner, mmu_notifier_invalidate_range_start,
  mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_only_end, MMU_NOTIFY_MIGRATE,
} from "./mmu_notifier.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { ftrace } from "../include/linux/ftrace.ts";
import { trace_set_migration_pte } from "../include/trace/events/migrate.ts";
import {
  trace_migrate_device_range, trace_migrate_vma_finalize, trace_migrate_vma_pages, trace_migrate_vma_setup,
} from "../include/trace/events/migrate_device.ts";
import { owner_name } from "../include/trace/events/mmu_notifier.ts";

// ---- MIGRATE_PFN_* (include/linux/migrate.h): value = pfn << 6 | flags --------------------

export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_WRITE = 1 << 3;
export const MIGRATE_PFN_SHIFT = 6;
const MIGRATE_PFN_SPAN = 2 ** MIGRATE_PFN_SHIFT;

// enum migrate_vma_direction
export const MIGRATE_VMA_SELECT_SYSTEM = 1 << 0;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1;
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2;

/** The flag bits live below MIGRATE_PFN_SHIFT, so they are read and changed arithmetically. */
export function mpfn_test(e: number, flag: number): boolean {
  // Device pfns sit high, so e is past 2^31 and `%` would be a floating-point fmod; dividing by
  // a power of two is exact and fast.
  return ((e - Math.floor(e / MIGRATE_PFN_SPAN) * MIGRATE_PFN_SPAN) & flag) !== 0;
}

export function mpfn_set(e: number, flag: number): number {
  return mpfn_test(e, flag) ? e : e + flag;
}

export function mpfn_clear(e: number, flag: number): number {
  return mpfn_test(e, flag) ? e - flag : e;
}

export function migrate_pfn(pfn: number): number {
  return pfn * MIGRATE_PFN_SPAN + MIGRATE_PFN_VALID;
}

export function migrate_pfn_to_pfn(e: number): number {
  return Math.floor(e / MIGRATE_PFN_SPAN);
}

/** migrate_pfn_to_page(): null unless the entry is VALID. kemu passes the machine's Kernel. */
export function migrate_pfn_to_page(k: Kernel, e: number): page | null {
  return mpfn_test(e, MIGRATE_PFN_VALID) ? pfn_to_page(k, migrate_pfn_to_pfn(e)) : null;
}

export class migrate_vma {
  vma: vm_area_struct | null = null;
  /** One entry per page, written by setup; the driver must not change it. */
  src: number[] | null = null;
  /** One entry per page, filled by the driver between setup and pages. */
  dst: number[] | null = null;
  cpages = 0;
  npages = 0;
  start = 0;
  end = 0;
  pgmap_owner: unknown = null;
  flags = 0;
  /** The device page a CPU fault is migrating (migrate_to_ram), or null. */
  fault_page: page | null = null;
}

// ---- collect --------------------------------------------------------------------------------

function collect_skip(start: number, end: number, migrate: migrate_vma): number {
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    migrate.dst![migrate.npages] = 0;
    migrate.src![migrate.npages++] = 0;
  }
  return 0;
}

/** migrate_vma_collect_hole(): holes of anonymous VMAs may be populated with device pages. */
function migrate_vma_collect_hole(start: number, end: number, _depth: number, walk: mm_walk): number {
  const migrate = walk.private_ as migrate_vma;
  if (!walk.vma || !vma_is_anonymous(walk.vma)) return collect_skip(start, end, migrate);
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    migrate.src![migrate.npages] = MIGRATE_PFN_MIGRATE;
    migrate.dst![migrate.npages] = 0;
    migrate.npages++;
    migrate.cpages++;
  }
  return 0;
}

/** What one PTE contributes before the page is locked: the candidate entry and its page. */
function collect_candidate(migrate: migrate_vma, vma: vm_area_struct, addr: number, pte: ReturnType<typeof ptep_get>): { mpfn: number; p: page | null } {
  const k = vma.vm_mm.k;
  if (pte_none(pte)) {
    if (!vma_is_anonymous(vma)) return { mpfn: 0, p: null };
    migrate.cpages++;
    return { mpfn: MIGRATE_PFN_MIGRATE, p: null };
  }
  if (!pte_present(pte)) {
    // Only device-private entries of the caller's own pagemap are migratable.
    const entry = pte_to_swp_entry(pte);
    if (!is_device_private_entry(entry)) return { mpfn: 0, p: null };
    const p = pfn_swap_entry_to_page(k, entry);
    if (!(migrate.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || p.pgmap?.owner !== migrate.pgmap_owner) return { mpfn: 0, p: null };
    let mpfn = migrate_pfn(p.pfn) + MIGRATE_PFN_MIGRATE;
    if (is_writable_device_private_entry(entry)) mpfn += MIGRATE_PFN_WRITE;
    return { mpfn, p };
  }
  const pfn = pte_pfn(pte);
  if (is_zero_pfn(pfn) && migrate.flags & MIGRATE_VMA_SELECT_SYSTEM) {
    migrate.cpages++;
    return { mpfn: MIGRATE_PFN_MIGRATE, p: null };
  }
  const p = vm_normal_page(vma, addr, pte);
  if (p && !is_zone_device_page(p) && !(migrate.flags & MIGRATE_VMA_SELECT_SYSTEM)) return { mpfn: 0, p: null };
  if (p && is_device_coherent_page(p) &&
      (!(migrate.flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) || p.pgmap?.owner !== migrate.pgmap_owner)) {
    return { mpfn: 0, p: null };
  }
  let mpfn = migrate_pfn(pfn) + MIGRATE_PFN_MIGRATE;
  if (pte_write(pte)) mpfn += MIGRATE_PFN_WRITE;
  return { mpfn, p };
}

/**
 * Locks the page and swaps its PTE for a migration entry. Returns false (entry becomes 0) when
 * the page is locked by someone else: migration is best effort and must not deadlock.
 */
function collect_lock_and_unmap(vma: vm_area_struct, addr: number, ptep: number, p: page): { ok: boolean; present: boolean } {
  const mm = vma.vm_mm;
  get_page(p);
  if (!trylock_page(p)) {
    put_page(p);
    return { ok: false, present: false };
  }
  const anon_exclusive = PageAnon(p) && PageAnonExclusive(p);
  let pte: ReturnType<typeof ptep_get>;
  if (anon_exclusive) {
    pte = ptep_clear_flush(vma, addr, ptep);
    // folio_try_share_anon_rmap_pte(): kemu has no GUP pins, so sharing always succeeds.
    ClearPageAnonExclusive(p);
  } else {
    pte = ptep_get_and_clear(mm, addr, ptep);
  }
  if (pte_present(pte) && pte_dirty(pte)) SetPageDirty(p);
  const swp_pte = make_migration_pte(p, pte, anon_exclusive);
  set_pte_at(mm, addr, ptep, swp_pte);
  if (trace_set_migration_pte.enabled) trace_set_migration_pte.trace(mm.k, { addr, pte: pte_val_hex(swp_pte), order: 0 });
  // Like an unmap: the mapping's reference goes, the collect reference keeps the page alive.
  page_remove_rmap(p, vma, false);
  put_page(p);
  return { ok: true, present: pte_present(pte) };
}

/** migrate_vma_collect_pmd(): one page table's worth of entries. */
function migrate_vma_collect_pmd(pmdp: number, start: number, end: number, walk: mm_walk): number {
  const migrate = walk.private_ as migrate_vma;
  const vma = walk.vma!;
  const mm = vma.vm_mm;
  using _ = ftrace(mm.k, "migrate_vma_collect_pmd");
  const pmd = pmdp_get(mm.k, pmdp);
  if (pmd_none(pmd)) return migrate_vma_collect_hole(start, end, -1, walk);
  if (pmd_trans_huge(pmd)) return collect_skip(start, end, migrate);
  const l = pte_offset_map_lock(mm, pmdp, start);
  if (!l) return collect_skip(start, end, migrate);
  let unmapped = 0;
  try {
    for (let addr = start, ptep = l.pte; addr < end; addr += PAGE_SIZE, ptep += 8) {
      const pte = ptep_get(mm.k, ptep);
      const c = collect_candidate(migrate, vma, addr, pte);
      const p = c.p;
      let mpfn = c.mpfn;
      if (p && mpfn) {
        // Pages without a mapping (driver-inserted) are never collected.
        if (!p.mapping) mpfn = 0;
        else {
          const r = collect_lock_and_unmap(vma, addr, ptep, p);
          if (!r.ok) mpfn = 0;
          else {
            migrate.cpages++;
            if (r.present) unmapped++;
          }
        }
      }
      migrate.dst![migrate.npages] = 0;
      migrate.src![migrate.npages++] = mpfn;
    }
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
  if (unmapped) flush_tlb_range(vma, start, end);
  return 0;
}

const migrate_vma_walk_ops: mm_walk_ops = {
  pmd_entry: migrate_vma_collect_pmd,
  pte_hole: migrate_vma_collect_hole,
};

/** migrate_vma_collect(): one MMU_NOTIFY_MIGRATE window (owner = pgmap_owner) around the walk. */
async function migrate_vma_collect(migrate: migrate_vma): Promise<void> {
  const vma = migrate.vma!;
  using _ = ftrace(vma.vm_mm.k, "migrate_vma_collect");
  const range = new mmu_notifier_range();
  mmu_notifier_range_init_owner(range, MMU_NOTIFY_MIGRATE, 0, vma.vm_mm, migrate.start, migrate.end, migrate.pgmap_owner);
  await mmu_notifier_invalidate_range_start(range);
  await walk_page_range(vma.vm_mm, migrate.start, migrate.end, migrate_vma_walk_ops, migrate);
  await mmu_notifier_invalidate_range_end(range);
  migrate.end = migrate.start + migrate.npages * PAGE_SIZE;
}

// ---- unmap and restore ----------------------------------------------------------------------

/** migrate_vma_check_page(): no references beyond the mappings and the ones migration holds. */
function migrate_vma_check_page(p: page, fault_page: page | null): boolean {
  let extra = 1 + (p === fault_page ? 1 : 0);
  if (is_zone_device_page(p)) extra++;
  if (page_mapping(p)) extra += 1;
  return page_count(p) - extra <= page_mapcount(p);
}

/**
 * migrate_device_unmap(): isolate system pages, unmap remaining mappings (other processes,
 * fork), and restore the pages that turn out pinned or still mapped. Returns how many entries
 * still migrate (pages and holes).
 */
async function migrate_device_unmap(k: Kernel, src: number[], npages: number, fault_page: page | null): Promise<number> {
  using _ = ftrace(k, "migrate_device_unmap");
  let restore = 0;
  let unmapped = 0;
  lru_add_drain();
  for (let i = 0; i < npages; i++) {
    const p = migrate_pfn_to_page(k, src[i]!);
    if (!p) {
      if (mpfn_test(src[i]!, MIGRATE_PFN_MIGRATE)) unmapped++;
      continue;
    }
    if (!is_zone_device_page(p)) {
      if (!folio_isolate_lru(p)) {
        src[i] = mpfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
        restore++;
        continue;
      }
      // The isolation reference replaces the one collect took.
      put_page(p);
    }
    if (page_mapped(p)) await try_to_migrate(p);
    if (page_mapped(p) || !migrate_vma_check_page(p, fault_page)) {
      if (!is_zone_device_page(p)) {
        get_page(p);
        folio_putback_lru(p);
      }
      src[i] = mpfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
      restore++;
      continue;
    }
    unmapped++;
  }
  for (let i = 0; i < npages && restore; i++) {
    const p = migrate_pfn_to_page(k, src[i]!);
    if (!p || mpfn_test(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
    remove_migration_ptes(p, p, false);
    src[i] = 0;
    unlock_page(p);
    put_page(p);
    restore--;
  }
  return unmapped;
}

// ---- setup ----------------------------------------------------------------------------------

/**
 * migrate_vma_setup(): validate, collect and unmap. Returns 0 even when nothing is migratable
 * (look at cpages and src); -EINVAL for a bad range, VMA or arrays.
 */
export async function migrate_vma_setup(args: migrate_vma): Promise<number> {
  const nr_pages = Math.floor((args.end - args.start) / PAGE_SIZE);
  args.start = PAGE_ALIGN_DOWN(args.start);
  args.end = PAGE_ALIGN_DOWN(args.end);
  const vma = args.vma;
  if (!vma || vma.vm_flags & VM_HUGETLB || vma.vm_flags & VM_SPECIAL) return -EINVAL;
  using _ = ftrace(vma.vm_mm.k, "migrate_vma_setup");
  if (nr_pages <= 0) return -EINVAL;
  if (args.start < vma.vm_start || args.start >= vma.vm_end) return -EINVAL;
  if (args.end <= vma.vm_start || args.end > vma.vm_end) return -EINVAL;
  if (!args.src || !args.dst) return -EINVAL;
  if (args.fault_page && !is_device_private_page(args.fault_page)) return -EINVAL;
  args.src.fill(0, 0, nr_pages);
  args.cpages = 0;
  args.npages = 0;
  await migrate_vma_collect(args);
  if (args.cpages) args.cpages = await migrate_device_unmap(vma.vm_mm.k, args.src, args.npages, args.fault_page);
  trace_migrate_vma_setup.trace(vma.vm_mm.k, {
    start: args.start, end: args.end, npages: args.npages, count: args.cpages, flags: args.flags, owner: owner_name(args.pgmap_owner),
  });
  return 0;
}

// ---- pages ----------------------------------------------------------------------------------

function install_pte_for_new_page(vma: vm_area_struct, p: page) {
  if (is_device_private_page(p)) {
    const e = vma.vm_flags & VM_WRITE ? make_writable_device_private_entry(p.pfn) : make_readable_device_private_entry(p.pfn);
    return swp_entry_to_pte(e);
  }
  let entry = mk_pte(p, vma.vm_page_prot);
  if (vma.vm_flags & VM_WRITE) entry = pte_mkwrite(pte_mkdirty(entry), vma);
  return entry;
}

/** The PMD of `addr`, allocating page-table levels as needed; null on -ENOMEM. */
function alloc_pmd(mm: mm_struct, addr: number): number | null {
  const p4d = p4d_alloc(mm, pgd_offset(mm, addr), addr);
  const pud = pud_alloc(mm, p4d, addr);
  if (pud === null) return null;
  const pmd = pmd_alloc(mm, pud, addr);
  if (pmd === null) return null;
  if (pmd_trans_huge(pmdp_get(mm.k, pmd))) return null;
  if (pte_alloc(mm, pmd)) return null;
  return pmd;
}

/** migrate_vma_insert_page(): fill a hole (or the zero page) with the new page. */
function migrate_vma_insert_page(migrate: migrate_vma, addr: number, p: page, src: number[], i: number): void {
  const vma = migrate.vma!;
  const mm = vma.vm_mm;
  using _ = ftrace(mm.k, "migrate_vma_insert_page");
  const abort = () => {
    src[i] = mpfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
  };
  if (!vma_is_anonymous(vma)) return abort();
  if (is_zone_device_page(p) && !is_device_private_page(p) && !is_device_coherent_page(p)) {
    mm.k.WARN_ONCE(true, "Unsupported ZONE_DEVICE page type.");
    return abort();
  }
  const pmd = alloc_pmd(mm, addr);
  if (pmd === null || anon_vma_prepare(vma)) return abort();
  __SetPageUptodate(p);
  const entry = install_pte_for_new_page(vma, p);
  const l = pte_offset_map_lock(mm, pmd, addr);
  if (!l) return abort();
  try {
    const orig = ptep_get(mm.k, l.pte);
    const replaces_zero = pte_present(orig) && is_zero_pfn(pte_pfn(orig));
    if ((pte_present(orig) && !replaces_zero) || (!pte_present(orig) && !pte_none(orig))) return abort();
    inc_mm_counter(mm, MM_ANONPAGES);
    page_add_new_anon_rmap(p, vma, addr);
    if (!is_zone_device_page(p)) lru_cache_add(p);
    get_page(p);
    if (replaces_zero) ptep_clear_flush(vma, addr, l.pte);
    set_pte_at(mm, addr, l.pte, entry);
    src[i] = MIGRATE_PFN_MIGRATE;
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
}

/** Can `p` move to `newpage`? Device destinations take anonymous pages only. */
function destination_allowed(p: page, newpage: page): boolean {
  if (is_device_private_page(newpage) || is_device_coherent_page(newpage)) return page_mapping(p) === null;
  return !is_zone_device_page(newpage);
}

async function __migrate_device_pages(k: Kernel, src: number[], dst: number[], npages: number, migrate: migrate_vma | null): Promise<void> {
  using _ = ftrace(k, "__migrate_device_pages");
  let range: mmu_notifier_range | null = null;
  for (let i = 0; i < npages; i++) {
    const newpage = migrate_pfn_to_page(k, dst[i]!);
    const p = migrate_pfn_to_page(k, src[i]!);
    if (!newpage) {
      src[i] = mpfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
      continue;
    }
    if (!p) {
      if (!mpfn_test(src[i]!, MIGRATE_PFN_MIGRATE) || !migrate) continue;
      const addr = migrate.start + i * PAGE_SIZE;
      if (!range) {
        // Inserting into holes changes PTEs: one MIGRATE window from the first hole to the end.
        range = new mmu_notifier_range();
        mmu_notifier_range_init_owner(range, MMU_NOTIFY_MIGRATE, 0, migrate.vma!.vm_mm, addr, migrate.end, migrate.pgmap_owner);
        await mmu_notifier_invalidate_range_start(range);
      }
      migrate_vma_insert_page(migrate, addr, newpage, src, i);
      continue;
    }
    if (!destination_allowed(p, newpage)) {
      src[i] = mpfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
      continue;
    }
    const extra = migrate && migrate.fault_page === p ? 1 : 0;
    if (migrate_folio_extra(page_mapping(p), newpage, p, extra) !== MIGRATEPAGE_SUCCESS) {
      src[i] = mpfn_clear(src[i]!, MIGRATE_PFN_MIGRATE);
    }
  }
  if (range) await mmu_notifier_invalidate_range_only_end(range);
}

/**
 * migrate_vma_pages(): move each page's identity to its destination and fill holes. Afterwards
 * src[i] & MIGRATE (with a VALID dst) is the only success signal.
 */
export async function migrate_vma_pages(migrate: migrate_vma): Promise<void> {
  const k = migrate.vma!.vm_mm.k;
  using _ = ftrace(k, "migrate_vma_pages");
  await __migrate_device_pages(k, migrate.src!, migrate.dst!, migrate.npages, migrate);
  if (trace_migrate_vma_pages.enabled) {
    trace_migrate_vma_pages.trace(k, { start: migrate.start, end: migrate.end, npages: migrate.npages, count: count_migrating(migrate) });
  }
}

/** Entries that still migrate: MIGRATE set with a destination page. */
function count_migrating(migrate: migrate_vma): number {
  let n = 0;
  for (let i = 0; i < migrate.npages; i++) {
    if (mpfn_test(migrate.src![i]!, MIGRATE_PFN_MIGRATE) && mpfn_test(migrate.dst![i]!, MIGRATE_PFN_VALID)) n++;
  }
  return n;
}

export async function migrate_device_pages(k: Kernel, src: number[], dst: number[], npages: number): Promise<void> {
  using _ = ftrace(k, "migrate_device_pages");
  await __migrate_device_pages(k, src, dst, npages, null);
}

// ---- finalize -------------------------------------------------------------------------------

function release_page(p: page): void {
  if (is_zone_device_page(p)) put_page(p);
  else folio_putback_lru(p);
}

/**
 * migrate_device_finalize(): map the destinations (or the sources again on failure), unlock
 * everything and drop the references migration held.
 */
export function migrate_device_finalize(k: Kernel, src: number[], dst: number[], npages: number): void {
  using _ = ftrace(k, "migrate_device_finalize");
  for (let i = 0; i < npages; i++) {
    let newpage = migrate_pfn_to_page(k, dst[i]!);
    const p = migrate_pfn_to_page(k, src[i]!);
    if (!p) {
      if (newpage) {
        unlock_page(newpage);
        put_page(newpage);
      }
      continue;
    }
    if (!mpfn_test(src[i]!, MIGRATE_PFN_MIGRATE) || !newpage) {
      if (newpage) {
        unlock_page(newpage);
        put_page(newpage);
      }
      newpage = p;
    }
    remove_migration_ptes(p, newpage, false);
    unlock_page(p);
    release_page(p);
    if (newpage !== p) {
      unlock_page(newpage);
      release_page(newpage);
    }
  }
}

export function migrate_vma_finalize(migrate: migrate_vma): void {
  const k = migrate.vma!.vm_mm.k;
  using _ = ftrace(k, "migrate_vma_finalize");
  if (trace_migrate_vma_finalize.enabled) {
    const migrated = count_migrating(migrate);
    let collected = 0;
    for (let i = 0; i < migrate.npages; i++) if (mpfn_test(migrate.src![i]!, MIGRATE_PFN_VALID)) collected++;
    trace_migrate_vma_finalize.trace(k, {
      start: migrate.start, end: migrate.end, npages: migrate.npages, count: migrated, restored: Math.max(0, collected - migrated),
    });
  }
  migrate_device_finalize(k, migrate.src!, migrate.dst!, migrate.npages);
}

// ---- eviction by pfn ------------------------------------------------------------------------

/** Takes a reference and the lock of an allocated device page; 0 when it is free or busy. */
function collect_device_pfn(k: Kernel, pfn: number): number {
  const p = pfn_to_page(k, pfn);
  if (!get_page_unless_zero(p)) return 0;
  if (!trylock_page(p)) {
    put_page(p);
    return 0;
  }
  return migrate_pfn(pfn) + MIGRATE_PFN_MIGRATE;
}

/**
 * migrate_device_range(): collect allocated device pages by pfn (free ones are skipped) and
 * unmap them from every process. Needs no mmap_lock.
 */
export async function migrate_device_range(k: Kernel, src: number[], start_pfn: number, npages: number): Promise<number> {
  using _ = ftrace(k, "migrate_device_range");
  for (let i = 0; i < npages; i++) src[i] = collect_device_pfn(k, start_pfn + i);
  if (trace_migrate_device_range.enabled) {
    trace_migrate_device_range.trace(k, { start_pfn, npages, count: src.slice(0, npages).filter((e) => e !== 0).length });
  }
  await migrate_device_unmap(k, src, npages, null);
  return 0;
}

/** migrate_device_pfns() (≈6.15): the same for an arbitrary pfn list. */
export async function migrate_device_pfns(k: Kernel, src: number[], npages: number): Promise<number> {
  using _ = ftrace(k, "migrate_device_pfns");
  for (let i = 0; i < npages; i++) src[i] = collect_device_pfn(k, src[i]!);
  await migrate_device_unmap(k, src, npages, null);
  return 0;
}
