// kemu hardware: the x86-64 CPU MMU (not a kernel file). It walks the 4-level page tables in
// emulated RAM from CR3, checks present / R/W / U/S / NX, sets the Accessed bit on every level
// and the Dirty bit on the leaf as the hardware does, and caches translations in a TLB tagged
// by PCID. Only an explicit invalidation (INVLPG, INVPCID, CR3 reload without NOFLUSH) removes a
// TLB entry: a PTE changed without a flush keeps translating to the old frame — a missing
// flush is a visible bug, as on real hardware. Huge pages (PSE) are not modelled.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { PHYSMEM } from "../kernel/tokens.ts";
import type { PhysMem } from "./physmem.ts";

// Page-fault error code bits (arch/x86/include/asm/trap_pf.h).
export const X86_PF_PROT = 1 << 0;
export const X86_PF_WRITE = 1 << 1;
export const X86_PF_USER = 1 << 2;
export const X86_PF_RSVD = 1 << 3;
export const X86_PF_INSTR = 1 << 4;
export const X86_PF_PK = 1 << 5;

export type MmuAccess = "read" | "write" | "exec";

const P = 1 << 0;
const RW = 1 << 1;
const US = 1 << 2;
const A = 1 << 5;
const D = 1 << 6;
const PSE = 1 << 7;
const NX_HI = 0x80000000;
const PFN_HI_MASK = 0x000fffff;
const FRAME = 4096;
const VA_LIMIT = 2 ** 47;
const LEVEL_SHIFTS = [39, 30, 21, 12];

interface tlb_entry {
  pfn: number;
  /** Effective permissions: AND of R/W and U/S over the walk, OR of NX. */
  writable: boolean;
  user: boolean;
  nx: boolean;
  /** The leaf's Dirty bit was set when the entry was filled. */
  dirty: boolean;
  /** Physical address of the leaf PTE, for the Dirty-bit assist. */
  pte_pa: number;
}

export type Translation =
  | { ok: true; pa: number }
  | { ok: false; error_code: number; kind: "pf" | "gp" };

export interface MmuStats {
  tlb_hits: number;
  tlb_misses: number;
  walks: number;
  flushes: number;
  tlb_entries: number;
}

/** TLB capacity (a Skylake-class STLB); eviction is FIFO, so it is deterministic. */
export const TLB_ENTRIES = 1536;

@injectable()
export class CpuMmu {
  private readonly tlb = new Map<number, tlb_entry>();
  private readonly st: MmuStats = { tlb_hits: 0, tlb_misses: 0, walks: 0, flushes: 0, tlb_entries: 0 };

  constructor(@inject(PHYSMEM) private readonly mem: PhysMem) {}

  private static key(pcid: number, vpn: number): number {
    return pcid * 2 ** 35 + vpn;
  }

  /**
   * One memory access at `va` for the address space rooted at `cr3` (tagged `pcid`).
   * Returns the physical address, or the #PF error code the CPU would push.
   */
  translate(cr3: number, pcid: number, va: number, access: MmuAccess, user: boolean): Translation {
    if (va < 0 || va >= VA_LIMIT) return { ok: false, error_code: 0, kind: "gp" };
    const vpn = Math.floor(va / FRAME);
    const key = CpuMmu.key(pcid, vpn);
    const e = this.tlb.get(key);
    if (e) {
      const denied = this.check(e, access, user);
      if (denied) {
        // A #PF invalidates the TLB entries of the faulting address (Intel SDM 4.10.4.1), so a
        // permission fault on a stale, stricter entry is resolved by the retry.
        this.tlb.delete(key);
        return { ok: false, error_code: denied, kind: "pf" };
      }
      if (access !== "write" || e.dirty) {
        this.st.tlb_hits++;
        return { ok: true, pa: e.pfn * FRAME + (va % FRAME) };
      }
      // First write through a clean entry: the CPU re-walks to set D (and faults if the
      // entry no longer allows the write).
      this.tlb.delete(key);
    }
    this.st.tlb_misses++;
    return this.walk(cr3, pcid, va, access, user);
  }

  private check(e: tlb_entry, access: MmuAccess, user: boolean): number {
    const code = X86_PF_PROT | (user ? X86_PF_USER : 0) | (access === "write" ? X86_PF_WRITE : 0) |
      (access === "exec" ? X86_PF_INSTR : 0);
    if (user && !e.user) return code;
    if (access === "write" && !e.writable) return code;
    if (access === "exec" && e.nx) return code;
    return 0;
  }

  private walk(cr3: number, pcid: number, va: number, access: MmuAccess, user: boolean): Translation {
    this.st.walks++;
    const base_code = (user ? X86_PF_USER : 0) | (access === "write" ? X86_PF_WRITE : 0) |
      (access === "exec" ? X86_PF_INSTR : 0);
    let table = cr3;
    let writable = true;
    let us = true;
    let nx = false;
    const entries: number[] = [];
    let lo = 0;
    let hi: number;
    for (const shift of LEVEL_SHIFTS) {
      const ep = table + (Math.floor(va / 2 ** shift) % 512) * 8;
      lo = this.mem.read32(ep);
      hi = this.mem.read32(ep + 4);
      if (!(lo & P)) return { ok: false, error_code: base_code, kind: "pf" };
      if (shift !== 12 && lo & PSE) return { ok: false, error_code: base_code | X86_PF_PROT | X86_PF_RSVD, kind: "pf" };
      writable &&= (lo & RW) !== 0;
      us &&= (lo & US) !== 0;
      nx ||= (hi & NX_HI) !== 0;
      entries.push(ep);
      table = ((hi & PFN_HI_MASK) * 2 ** 20 + (lo >>> 12)) * FRAME;
    }
    const pte_pa = entries[3]!;
    const e: tlb_entry = { pfn: table / FRAME, writable, user: us, nx, dirty: (lo & D) !== 0, pte_pa };
    const denied = this.check(e, access, user);
    if (denied) return { ok: false, error_code: denied, kind: "pf" };
    for (const ep of entries) {
      const v = this.mem.read32(ep);
      if (!(v & A)) this.mem.write32(ep, v | A);
    }
    if (access === "write") {
      this.mem.write32(pte_pa, this.mem.read32(pte_pa) | D);
      e.dirty = true;
    }
    this.fill(CpuMmu.key(pcid, Math.floor(va / FRAME)), e);
    return { ok: true, pa: e.pfn * FRAME + (va % FRAME) };
  }

  private fill(key: number, e: tlb_entry): void {
    if (this.tlb.size >= TLB_ENTRIES) this.tlb.delete(this.tlb.keys().next().value!);
    this.tlb.set(key, e);
  }

  // ---- invalidation (what the kernel's flush_tlb_* end up executing) -------------------------

  /** INVLPG / INVPCID type 0: one page of one PCID. */
  invlpg(pcid: number, va: number): void {
    this.st.flushes++;
    this.tlb.delete(CpuMmu.key(pcid, Math.floor(va / FRAME)));
  }

  /** INVPCID type 1 (single context): every entry of a PCID. */
  flush_pcid(pcid: number): void {
    this.st.flushes++;
    const lo = CpuMmu.key(pcid, 0);
    const hi = CpuMmu.key(pcid + 1, 0);
    for (const k of [...this.tlb.keys()]) if (k >= lo && k < hi) this.tlb.delete(k);
  }

  /** INVPCID type 2/3 or CR4.PGE toggle: everything. */
  flush_all(): void {
    this.st.flushes++;
    this.tlb.clear();
  }

  /** Does the TLB hold a translation for (pcid, va)? (for tests and debug output) */
  tlb_lookup(pcid: number, va: number): number | null {
    const e = this.tlb.get(CpuMmu.key(pcid, Math.floor(va / FRAME)));
    return e ? e.pfn : null;
  }

  stats(): MmuStats {
    return { ...this.st, tlb_entries: this.tlb.size };
  }
}
