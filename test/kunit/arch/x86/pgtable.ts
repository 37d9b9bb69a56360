// KUnit suite for the x86-64 page-table entry format (arch/x86/include/asm/pgtable*.ts) and the
// swap-entry encodings of include/linux/swapops.ts: encode/decode round trips for every entry
// kind, pfns above 2^32, the PROT_NONE pfn inversion, and entries written to and read back from
// emulated RAM.

import {
  KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_ARRAY_PARAM, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_ASSERT_TRUE,
  type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import {
  pfn_pte, pte_pfn, pte_present, pte_none, pte_write, pte_dirty, pte_young, pte_exec, pte_protnone, pte_mkwrite, pte_wrprotect,
  pte_mkdirty, pte_mkclean, pte_mkyoung, pte_mkold, pte_modify, pte_same, ptep_get, set_pte, pte_special, pte_mkspecial, __pte,
} from "../../../../arch/x86/include/asm/pgtable.ts";
import {
  PAGE_NONE, PAGE_SHARED, PAGE_READONLY, PAGE_COPY, PAGE_SHARED_EXEC, _PAGE_PRESENT, _PAGE_PROTNONE, PTE_PFN_MAX,
} from "../../../../arch/x86/include/asm/pgtable_types.ts";
import { pte_swp_soft_dirty, pte_swp_mksoft_dirty, pte_swp_mkexclusive, pte_swp_exclusive, pte_swp_uffd_wp, pte_swp_mkuffd_wp } from "../../../../arch/x86/include/asm/pgtable_64.ts";
import * as S from "../../../../include/linux/swapops.ts";
import { SWP_DEVICE_READ, SWP_DEVICE_WRITE, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE, SWP_MIGRATION_READ_EXCLUSIVE, SWP_DEVICE_EXCLUSIVE_READ, SWP_DEVICE_EXCLUSIVE_WRITE, SWP_HWPOISON, SWP_PTE_MARKER, MAX_SWAPFILES } from "../../../../include/linux/swap.ts";
import { vm_get_page_prot } from "../../../../mm/mmap.ts";
import { VM_READ, VM_WRITE, VM_EXEC, VM_SHARED } from "../../../../include/linux/mm.ts";
import { alloc_page } from "../../../../mm/page_alloc.ts";
import { __free_page } from "../../../../mm/page_alloc.ts";
import { GFP_KERNEL, __GFP_ZERO } from "../../../../include/linux/gfp_types.ts";

const PFNS = [0, 1, 0x12345, 2 ** 20 - 1, 2 ** 20, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 0x1234, 2 ** 34 - 1];

function present_pte_round_trip(test: kunit): void {
  const pfn = test.param_value as number;
  for (const prot of [PAGE_SHARED, PAGE_READONLY, PAGE_COPY, PAGE_SHARED_EXEC]) {
    const pte = pfn_pte(pfn, prot);
    KUNIT_EXPECT_EQ(test, pte_pfn(pte), pfn);
    KUNIT_EXPECT_TRUE(test, pte_present(pte));
    KUNIT_EXPECT_FALSE(test, pte_none(pte));
    KUNIT_EXPECT_EQ(test, pte_write(pte), prot === PAGE_SHARED || prot === PAGE_SHARED_EXEC);
    KUNIT_EXPECT_EQ(test, pte_exec(pte), prot === PAGE_SHARED_EXEC);
  }
}

function pte_modifiers(test: kunit): void {
  const p = pfn_pte(2 ** 33 + 7, PAGE_READONLY);
  KUNIT_EXPECT_FALSE(test, pte_write(p));
  const w = pte_mkwrite(p);
  KUNIT_EXPECT_TRUE(test, pte_write(w));
  KUNIT_EXPECT_FALSE(test, pte_write(pte_wrprotect(w)));
  KUNIT_EXPECT_TRUE(test, pte_dirty(pte_mkdirty(p)));
  KUNIT_EXPECT_FALSE(test, pte_dirty(pte_mkclean(pte_mkdirty(p))));
  KUNIT_EXPECT_TRUE(test, pte_young(pte_mkyoung(pte_mkold(p))));
  KUNIT_EXPECT_FALSE(test, pte_young(pte_mkold(p)));
  KUNIT_EXPECT_TRUE(test, pte_special(pte_mkspecial(p)));
  // Every modifier keeps the pfn.
  for (const q of [w, pte_mkdirty(p), pte_mkold(p), pte_mkspecial(p)]) KUNIT_EXPECT_EQ(test, pte_pfn(q), 2 ** 33 + 7);
}

/** PROT_NONE entries are not present for the CPU, keep their page, and store the pfn inverted. */
function protnone_inverts_pfn(test: kunit): void {
  const pfn = 0x1234567;
  const p = pte_mkdirty(pfn_pte(pfn, PAGE_SHARED));
  const n = pte_modify(p, PAGE_NONE);
  KUNIT_EXPECT_TRUE(test, pte_present(n));
  KUNIT_EXPECT_TRUE(test, pte_protnone(n));
  KUNIT_EXPECT_EQ(test, n.lo & _PAGE_PRESENT, 0);
  KUNIT_EXPECT_EQ(test, n.lo & _PAGE_PROTNONE, _PAGE_PROTNONE);
  KUNIT_EXPECT_EQ(test, pte_pfn(n), pfn);
  KUNIT_EXPECT_TRUE(test, pte_dirty(n));
  // The raw pfn field holds ~pfn.
  KUNIT_EXPECT_EQ(test, (n.hi & 0xfffff) * 2 ** 20 + (n.lo >>> 12), PTE_PFN_MAX - pfn);
  const back = pte_modify(n, PAGE_SHARED);
  KUNIT_EXPECT_EQ(test, pte_pfn(back), pfn);
  KUNIT_EXPECT_TRUE(test, pte_write(back));
}

function protection_map_matches_x86(test: kunit): void {
  KUNIT_EXPECT_TRUE(test, pte_same(vm_get_page_prot(0), PAGE_NONE));
  KUNIT_EXPECT_TRUE(test, pte_same(vm_get_page_prot(VM_READ | VM_WRITE), PAGE_COPY));
  KUNIT_EXPECT_TRUE(test, pte_same(vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED), PAGE_SHARED));
  KUNIT_EXPECT_TRUE(test, pte_same(vm_get_page_prot(VM_READ | VM_EXEC | VM_WRITE | VM_SHARED), PAGE_SHARED_EXEC));
  KUNIT_EXPECT_FALSE(test, pte_write(pfn_pte(1, vm_get_page_prot(VM_READ | VM_WRITE))));
}

interface entry_kind {
  name: string;
  make: (off: number) => S.swp_entry_t;
  type: number;
  test: (e: S.swp_entry_t) => boolean;
  writable: boolean;
}

const KINDS: entry_kind[] = [
  { name: "device_private_read", make: S.make_readable_device_private_entry, type: SWP_DEVICE_READ, test: S.is_device_private_entry, writable: false },
  { name: "device_private_write", make: S.make_writable_device_private_entry, type: SWP_DEVICE_WRITE, test: S.is_device_private_entry, writable: true },
  { name: "migration_read", make: S.make_readable_migration_entry, type: SWP_MIGRATION_READ, test: S.is_migration_entry, writable: false },
  { name: "migration_read_exclusive", make: S.make_readable_exclusive_migration_entry, type: SWP_MIGRATION_READ_EXCLUSIVE, test: S.is_migration_entry, writable: false },
  { name: "migration_write", make: S.make_writable_migration_entry, type: SWP_MIGRATION_WRITE, test: S.is_migration_entry, writable: true },
  { name: "device_exclusive_read", make: S.make_readable_device_exclusive_entry, type: SWP_DEVICE_EXCLUSIVE_READ, test: S.is_device_exclusive_entry, writable: false },
  { name: "device_exclusive_write", make: S.make_writable_device_exclusive_entry, type: SWP_DEVICE_EXCLUSIVE_WRITE, test: S.is_device_exclusive_entry, writable: true },
];

function is_writable(e: S.swp_entry_t): boolean {
  return S.is_writable_device_private_entry(e) || S.is_writable_migration_entry(e) || S.is_writable_device_exclusive_entry(e);
}

function swap_entry_round_trip(test: kunit): void {
  const kind = test.param_value as entry_kind;
  for (const pfn of PFNS) {
    const e = kind.make(pfn);
    const pte = S.swp_entry_to_pte(e);
    KUNIT_EXPECT_FALSE(test, pte_present(pte), `${kind.name} pfn ${pfn}`);
    KUNIT_EXPECT_FALSE(test, pte_none(pte));
    KUNIT_EXPECT_TRUE(test, S.is_swap_pte(pte));
    const back = S.pte_to_swp_entry(pte);
    KUNIT_EXPECT_EQ(test, S.swp_type(back), kind.type);
    KUNIT_EXPECT_EQ(test, S.swp_offset(back), pfn);
    KUNIT_EXPECT_EQ(test, S.swp_offset_pfn(back), pfn);
    KUNIT_EXPECT_TRUE(test, kind.test(back));
    KUNIT_EXPECT_TRUE(test, S.non_swap_entry(back));
    KUNIT_EXPECT_TRUE(test, S.is_pfn_swap_entry(back));
    KUNIT_EXPECT_EQ(test, is_writable(back), kind.writable);
    for (const other of KINDS) if (other.test !== kind.test) KUNIT_EXPECT_FALSE(test, other.test(back), other.name);
    // The software bits ride along without disturbing the entry.
    const flagged = pte_swp_mkuffd_wp(pte_swp_mkexclusive(pte_swp_mksoft_dirty(pte)));
    KUNIT_EXPECT_TRUE(test, pte_swp_soft_dirty(flagged) && pte_swp_exclusive(flagged) && pte_swp_uffd_wp(flagged));
    KUNIT_EXPECT_EQ(test, S.swp_offset(S.pte_to_swp_entry(flagged)), pfn);
    KUNIT_EXPECT_EQ(test, S.swp_type(S.pte_to_swp_entry(flagged)), kind.type);
  }
}

function swap_type_numbering(test: kunit): void {
  KUNIT_EXPECT_EQ(test, MAX_SWAPFILES, 23);
  KUNIT_EXPECT_EQ(test, SWP_HWPOISON, 23);
  KUNIT_EXPECT_EQ(test, SWP_MIGRATION_READ, 24);
  KUNIT_EXPECT_EQ(test, SWP_MIGRATION_WRITE, 26);
  KUNIT_EXPECT_EQ(test, SWP_DEVICE_WRITE, 27);
  KUNIT_EXPECT_EQ(test, SWP_DEVICE_READ, 28);
  KUNIT_EXPECT_EQ(test, SWP_DEVICE_EXCLUSIVE_READ, 30);
  KUNIT_EXPECT_EQ(test, SWP_PTE_MARKER, 31);
  const sw = S.swp_entry(3, 12345);
  KUNIT_EXPECT_FALSE(test, S.non_swap_entry(sw));
  KUNIT_EXPECT_EQ(test, S.swp_offset(S.pte_to_swp_entry(S.swp_entry_to_pte(sw))), 12345);
  const hw = S.pte_to_swp_entry(S.swp_entry_to_pte(S.swp_entry(SWP_HWPOISON, 99)));
  KUNIT_EXPECT_TRUE(test, S.is_hwpoison_entry(hw));
  const m = S.make_pte_marker_entry(S.PTE_MARKER_UFFD_WP);
  KUNIT_EXPECT_TRUE(test, S.is_pte_marker(S.swp_entry_to_pte(m)));
}

function migration_entry_ad_bits(test: kunit): void {
  const e = S.make_migration_entry_dirty(S.make_migration_entry_young(S.make_writable_migration_entry(2 ** 33 + 5)));
  const back = S.pte_to_swp_entry(S.swp_entry_to_pte(e));
  KUNIT_EXPECT_TRUE(test, S.is_migration_entry_young(back));
  KUNIT_EXPECT_TRUE(test, S.is_migration_entry_dirty(back));
  KUNIT_EXPECT_EQ(test, S.swp_offset_pfn(back), 2 ** 33 + 5);
  KUNIT_EXPECT_TRUE(test, S.is_writable_migration_entry(back));
}

/** Entries written into a table page in emulated RAM read back identically (two 32-bit words). */
function entries_in_ram(test: kunit): void {
  const k = test.k;
  const table = alloc_page(k, GFP_KERNEL | __GFP_ZERO);
  KUNIT_ASSERT_TRUE(test, table !== null);
  const base = table!.pfn * 4096;
  const samples = [pfn_pte(2 ** 32 + 9, PAGE_SHARED), S.swp_entry_to_pte(S.make_writable_device_private_entry(2 ** 33)), __pte(0, 0)];
  samples.forEach((v, i) => set_pte(k, base + i * 8, v));
  samples.forEach((v, i) => KUNIT_EXPECT_TRUE(test, pte_same(ptep_get(k, base + i * 8), v)));
  KUNIT_EXPECT_TRUE(test, pte_none(ptep_get(k, base + 511 * 8)));
  __free_page(table!);
}

export const x86_pgtable_suite: kunit_suite = {
  name: "x86_pgtable",
  test_cases: [
    KUNIT_CASE_PARAM(present_pte_round_trip, KUNIT_ARRAY_PARAM(PFNS, (p) => `pfn 0x${p.toString(16)}`)),
    KUNIT_CASE(pte_modifiers),
    KUNIT_CASE(protnone_inverts_pfn),
    KUNIT_CASE(protection_map_matches_x86),
    KUNIT_CASE_PARAM(swap_entry_round_trip, KUNIT_ARRAY_PARAM(KINDS, (k) => k.name)),
    KUNIT_CASE(swap_type_numbering),
    KUNIT_CASE(migration_entry_ad_bits),
    KUNIT_CASE(entries_in_ram),
  ],
};
