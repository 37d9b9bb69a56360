// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_gmc.c and amdgpu_gmc.h (Linux 6.8): the memory
// controller state shared by gmc_v9_0 and gmc_v10_0 — the MC address map (VRAM and GART
// placement), the VM hubs' register layout, PTE/PDE helpers, TLB flushes (by MMIO, by ring, by
// PASID) and the retry-fault filter: a 256-entry ring of recent faults chained through a
// 256-bucket hash on (page address, PASID), which drops a fault seen within the last
// AMDGPU_GMC_FAULT_TIMEOUT IH timestamp ticks unless it was explicitly expired.

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_bo } from "./amdgpu_object.ts";
import { amdgpu_bo_gpu_offset } from "./amdgpu_object.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import { amdgpu_irq_src } from "./amdgpu_irq.ts";
import { amdgpu_ih_ts_after, type amdgpu_ih_ring } from "./amdgpu_ih.ts";
import { RREG32, WREG32 } from "./amdgpu_device.ts";
import { EINVAL } from "../../../../../include/uapi/asm-generic/errno.ts";
import { spinlock_t, spin_lock_irqsave, spin_unlock_irqrestore } from "../../../../../kernel/locking/spinlock.ts";
import {
  AMDGPU_PDE_PTE_HI, AMDGPU_PTE_SYSTEM, AMDGPU_PTE_VALID, amdgpu_pte_encode,
} from "../include/amdgpu_vm_pte.ts";
import {
  REG_SET_FIELD, VM_INVALIDATE_ENG0_REQ__FLUSH_TYPE, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L1_PTES,
  VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE0, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE1, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE2,
  VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PTES, VM_INVALIDATE_ENG0_REQ__PER_VMID_INVALIDATE_REQ, lower_32_bits, upper_32_bits,
  mmIH_VMID_0_LUT,
} from "../include/asic_reg/kemu_gpu_regs.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";

/** A 64-bit PTE/PDE flag word as two 32-bit halves. */
export interface amdgpu_pte_flags {
  lo: number;
  hi: number;
}

/** Where PTE writes go: a table's CPU mapping, or an IB image. */
export interface pte_sink {
  wr32(off: number, v: number): void;
}

export const AMDGPU_GMC_FAULT_RING_ORDER = 8;
export const AMDGPU_GMC_FAULT_RING_SIZE = 1 << AMDGPU_GMC_FAULT_RING_ORDER;
export const AMDGPU_GMC_FAULT_HASH_ORDER = 8;
export const AMDGPU_GMC_FAULT_HASH_SIZE = 1 << AMDGPU_GMC_FAULT_HASH_ORDER;
/** Faults repeating within this many IH timestamp ticks (10 ns each) are duplicates. */
export const AMDGPU_GMC_FAULT_TIMEOUT = 5000;
/** Invalidation engine used for MMIO flushes (gmc_v9_0_flush_gpu_tlb's engine 17). */
export const AMDGPU_GMC_MMIO_INV_ENG = 17;

export class amdgpu_gmc_fault {
  timestamp = 0;
  next = 0;
  key = 0;
  timestamp_expiry = 0;
}

/** Register offsets and helpers of one VM hub (struct amdgpu_vmhub). */
export interface amdgpu_vmhub {
  name: string;
  ctx0_ptb_addr_lo32: number;
  ctx0_ptb_addr_hi32: number;
  vm_inv_eng0_sem: number;
  vm_inv_eng0_req: number;
  vm_inv_eng0_ack: number;
  vm_context0_cntl: number;
  vm_l2_pro_fault_status: number;
  vm_l2_pro_fault_cntl: number;
  vm_l2_pro_fault_addr_lo32: number;
  vm_l2_pro_fault_addr_hi32: number;
  ctx_distance: number;
  ctx_addr_distance: number;
  eng_distance: number;
  /** Client-id names for the fault status CID field. */
  client_name(cid: number): string;
}

export interface amdgpu_gmc_funcs {
  flush_gpu_tlb(adev: amdgpu_device, vmid: number, vmhub: number, flush_type: number): void;
  emit_flush_gpu_tlb(ring: amdgpu_ring, vmid: number, pd_addr: number): number;
}

export class amdgpu_gmc {
  /** MC addresses of VRAM and GART; sizes in bytes. */
  vram_start = 0;
  vram_end = 0;
  gart_start = 0;
  gart_end = 0;
  gart_size = 0;
  mc_vram_size = 0;
  real_vram_size = 0;
  visible_vram_size = 0;
  aper_base = 0;
  aper_size = 0;
  /** The VM-fault interrupt source (VMC and UTCL2 clients). */
  vm_fault = new amdgpu_irq_src();
  gmc_funcs: amdgpu_gmc_funcs | null = null;
  /** amdgpu.noretry: retry (XNACK) faults disabled. */
  noretry = 0;
  readonly fault_ring: amdgpu_gmc_fault[] = Array.from({ length: AMDGPU_GMC_FAULT_RING_SIZE }, () => new amdgpu_gmc_fault());
  readonly fault_hash: number[] = new Array<number>(AMDGPU_GMC_FAULT_HASH_SIZE).fill(0);
  /** 8-bit cursor into fault_ring. */
  last_fault = 0;
  invalidate_lock!: spinlock_t;
  /** Per hub: invalidation engines handed to rings so far. */
  readonly next_inv_eng: number[] = [1, 1];
}

// ---- the MC address map ------------------------------------------------------------------

/** amdgpu_gmc_vram_location(): VRAM at the VBIOS's frame-buffer base. */
export function amdgpu_gmc_vram_location(adev: amdgpu_device, base: number): void {
  const mc = adev.gmc;
  mc.vram_start = base;
  mc.vram_end = base + mc.mc_vram_size - 1;
  adev.k.dev_info(adev, `VRAM: ${Math.floor(mc.mc_vram_size / 2 ** 20)}M 0x${hex16(mc.vram_start)} - 0x${hex16(mc.vram_end)} (${Math.floor(mc.real_vram_size / 2 ** 20)}M used)`);
}

/** amdgpu_gmc_gart_location(): the GART below VRAM when it fits there (best fit), else above. */
export function amdgpu_gmc_gart_location(adev: amdgpu_device): void {
  const mc = adev.gmc;
  const four_gb = 2 ** 32;
  if (mc.vram_start >= mc.gart_size) mc.gart_start = 0;
  else mc.gart_start = Math.ceil((mc.vram_end + 1) / four_gb) * four_gb;
  mc.gart_end = mc.gart_start + mc.gart_size - 1;
  adev.k.dev_info(adev, `GART: ${Math.floor(mc.gart_size / 2 ** 20)}M 0x${hex16(mc.gart_start)} - 0x${hex16(mc.gart_end)}`);
}

function hex16(v: number): string {
  return v.toString(16).toUpperCase().padStart(16, "0");
}

/** amdgpu_gmc_vram_mc2pa(): MC address of VRAM → the physical offset PDEs/PTEs carry. */
export function amdgpu_gmc_vram_mc2pa(adev: amdgpu_device, mc_addr: number): number {
  return mc_addr - adev.gmc.vram_start + adev.vm_manager.vram_base_offset;
}

/** amdgpu_gmc_vram_pa(): physical VRAM address of a VRAM BO. */
export function amdgpu_gmc_vram_pa(adev: amdgpu_device, bo: amdgpu_bo): number {
  return amdgpu_gmc_vram_mc2pa(adev, amdgpu_bo_gpu_offset(bo));
}

/**
 * amdgpu_gmc_get_vm_pde() (gmc_v9_0_get_vm_pde): a PDE pointing at a VRAM table carries the
 * table's physical address, not its MC address.
 */
export function amdgpu_gmc_get_vm_pde(adev: amdgpu_device, addr: number, flags: amdgpu_pte_flags): number {
  if (!(flags.hi & AMDGPU_PDE_PTE_HI) && !(flags.lo & AMDGPU_PTE_SYSTEM)) return amdgpu_gmc_vram_mc2pa(adev, addr);
  return addr;
}

/** amdgpu_gmc_pd_addr(): the root table address (with the VALID flag) for a context base register. */
export function amdgpu_gmc_pd_addr(adev: amdgpu_device, bo: amdgpu_bo): number {
  const flags = { lo: AMDGPU_PTE_VALID, hi: 0 };
  return amdgpu_gmc_get_vm_pde(adev, amdgpu_bo_gpu_offset(bo), flags) + flags.lo;
}

/** amdgpu_gmc_set_pte_pde(): writes entry `gpu_page_idx` = addr | flags into `dst`. */
export function amdgpu_gmc_set_pte_pde(_adev: amdgpu_device, dst: pte_sink, gpu_page_idx: number, addr: number, flags: amdgpu_pte_flags): void {
  const [lo, hi] = amdgpu_pte_encode(addr, flags.lo, flags.hi);
  dst.wr32(gpu_page_idx * 8, lo);
  dst.wr32(gpu_page_idx * 8 + 4, hi);
}

// ---- TLB flushes -----------------------------------------------------------------------

/** get_invalidate_req(): a full flush of `vmid` (L2 PTEs and PDEs, L1). */
export function amdgpu_gmc_get_invalidate_req(vmid: number, flush_type: number): number {
  let req = 0;
  req = REG_SET_FIELD(req, VM_INVALIDATE_ENG0_REQ__PER_VMID_INVALIDATE_REQ, 1 << vmid);
  req = REG_SET_FIELD(req, VM_INVALIDATE_ENG0_REQ__FLUSH_TYPE, flush_type);
  req = REG_SET_FIELD(req, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PTES, 1);
  req = REG_SET_FIELD(req, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE0, 1);
  req = REG_SET_FIELD(req, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE1, 1);
  req = REG_SET_FIELD(req, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE2, 1);
  req = REG_SET_FIELD(req, VM_INVALIDATE_ENG0_REQ__INVALIDATE_L1_PTES, 1);
  return req;
}

/**
 * The MMIO flush of gmc_v9_0/gmc_v10_0_flush_gpu_tlb(): request on engine 17, poll the ACK
 * (udelay(1) between reads, usec_timeout tries). Any context.
 */
export function amdgpu_gmc_mmio_flush(adev: amdgpu_device, vmid: number, vmhub: number, flush_type: number): void {
  const hub = adev.vmhub[vmhub]!;
  const eng = AMDGPU_GMC_MMIO_INV_ENG;
  const req = amdgpu_gmc_get_invalidate_req(vmid, flush_type);
  const flags = spin_lock_irqsave(adev.gmc.invalidate_lock);
  WREG32(adev, hub.vm_inv_eng0_req + hub.eng_distance * eng, req);
  let j = 0;
  for (; j < adev.usec_timeout; j++) {
    if (RREG32(adev, hub.vm_inv_eng0_ack + hub.eng_distance * eng) & (1 << vmid)) break;
    adev.k.udelay(1);
  }
  spin_unlock_irqrestore(adev.gmc.invalidate_lock, flags);
  if (j >= adev.usec_timeout) adev.k.pr_err("[drm] *ERROR* Timeout waiting for VM flush ACK!");
}

/** amdgpu_gmc_flush_gpu_tlb(): flush `vmid`'s translations on hub `vmhub`. */
export function amdgpu_gmc_flush_gpu_tlb(adev: amdgpu_device, vmid: number, vmhub: number, flush_type: number): void {
  using _ = ftrace(adev.k, "amdgpu_gmc_flush_gpu_tlb");
  adev.gmc.gmc_funcs?.flush_gpu_tlb(adev, vmid, vmhub, flush_type);
}

/**
 * amdgpu_gmc_flush_gpu_tlb_pasid(): flushes every VMID currently mapped to `pasid` (the IH
 * VMID→PASID table the KFD programs), on all hubs if `all_hub`. -EINVAL-free: no VMID, no flush.
 */
export function amdgpu_gmc_flush_gpu_tlb_pasid(adev: amdgpu_device, pasid: number, flush_type: number, all_hub: boolean): number {
  using _ = ftrace(adev.k, "amdgpu_gmc_flush_gpu_tlb_pasid");
  for (let vmid = 1; vmid < 16; vmid++) {
    if ((RREG32(adev, mmIH_VMID_0_LUT + vmid) & 0xffff) !== pasid) continue;
    if (all_hub) for (let hub = 0; hub < adev.vmhub.length; hub++) amdgpu_gmc_flush_gpu_tlb(adev, vmid, hub, flush_type);
    else amdgpu_gmc_flush_gpu_tlb(adev, vmid, 0, flush_type);
  }
  return 0;
}

/** Hands a ring an invalidation engine on its hub (amdgpu_gmc_allocate_vm_inv_eng). */
export function amdgpu_gmc_allocate_vm_inv_eng(adev: amdgpu_device, ring: amdgpu_ring): number {
  const hub = ring.funcs.vmhub;
  const eng = adev.gmc.next_inv_eng[hub]!;
  if (eng >= AMDGPU_GMC_MMIO_INV_ENG) return -EINVAL;
  adev.gmc.next_inv_eng[hub] = eng + 1;
  ring.vm_inv_eng = eng;
  return 0;
}

/**
 * The ring flush of gmc_v9_0/gmc_v10_0_emit_flush_gpu_tlb(): write the context's page-table
 * base, then request the invalidation on the ring's engine and wait for its ACK.
 */
export function amdgpu_gmc_emit_flush(ring: amdgpu_ring, vmid: number, pd_addr: number): number {
  const adev = ring.adev;
  const hub = adev.vmhub[ring.funcs.vmhub]!;
  const eng = ring.vm_inv_eng;
  const req = amdgpu_gmc_get_invalidate_req(vmid, 0);
  const f = ring.funcs;
  f.emit_wreg!(ring, hub.ctx0_ptb_addr_lo32 + hub.ctx_addr_distance * vmid, lower_32_bits(pd_addr));
  f.emit_wreg!(ring, hub.ctx0_ptb_addr_hi32 + hub.ctx_addr_distance * vmid, upper_32_bits(pd_addr));
  f.emit_wreg!(ring, hub.vm_inv_eng0_req + hub.eng_distance * eng, req);
  f.emit_reg_wait!(ring, hub.vm_inv_eng0_ack + hub.eng_distance * eng, 1 << vmid, 1 << vmid);
  return pd_addr;
}

// ---- the retry-fault filter ------------------------------------------------------------------

/** amdgpu_gmc_fault_key(): page-aligned address and 16-bit PASID in one number. */
function amdgpu_gmc_fault_key(addr: number, pasid: number): number {
  return (addr - (addr % 4096)) * 16 + (pasid & 0xffff);
}

/** GOLDEN_RATIO_64 (0x61c8864680b583eb) as 16-bit limbs, least significant first. */
const GOLDEN_RATIO_64_LIMBS = [0x83eb, 0x80b5, 0x8646, 0x61c8] as const;

/**
 * hash_64(): the kernel's multiplicative hash — the top `bits` (≤ 16) bits of val × GOLDEN_RATIO_64
 * mod 2^64, for a non-negative safe-integer `val`. Computed in 16-bit limbs so every partial
 * product stays exact in a double (no BigInt: it runs for every retry-fault IV).
 */
function hash_64(val: number, bits: number): number {
  const g = GOLDEN_RATIO_64_LIMBS;
  const v0 = val % 65536;
  const v1 = Math.floor(val / 65536) % 65536;
  const v2 = Math.floor(val / 2 ** 32) % 65536;
  const v3 = Math.floor(val / 2 ** 48) % 65536;
  const r0 = v0 * g[0];
  const r1 = v0 * g[1] + v1 * g[0] + Math.floor(r0 / 65536);
  const r2 = v0 * g[2] + v1 * g[1] + v2 * g[0] + Math.floor(r1 / 65536);
  const r3 = v0 * g[3] + v1 * g[2] + v2 * g[1] + v3 * g[0] + Math.floor(r2 / 65536);
  return Math.floor((r3 % 65536) / 2 ** (16 - bits));
}

/**
 * amdgpu_gmc_filter_faults(): true if the fault should be dropped — stale (older than what the
 * ring already processed), the fault ring full of recent entries, or the same (page, PASID)
 * seen within the window and not expired; otherwise records it and returns false.
 */
export function amdgpu_gmc_filter_faults(adev: amdgpu_device, ih: amdgpu_ih_ring, addr: number, pasid: number, timestamp: number): boolean {
  using _ = ftrace(adev.k, "amdgpu_gmc_filter_faults");
  const gmc = adev.gmc;
  const key = amdgpu_gmc_fault_key(addr, pasid);
  if (amdgpu_ih_ts_after(timestamp, ih.processed_timestamp)) return true;
  const stamp = Math.max(timestamp, AMDGPU_GMC_FAULT_TIMEOUT + 1) - AMDGPU_GMC_FAULT_TIMEOUT;
  if (gmc.fault_ring[gmc.last_fault]!.timestamp >= stamp) return true;
  const hash = hash_64(key, AMDGPU_GMC_FAULT_HASH_ORDER);
  let fault = gmc.fault_ring[gmc.fault_hash[hash]!]!;
  while (fault.timestamp >= stamp) {
    if (fault.key === key) {
      // Expired by amdgpu_gmc_filter_faults_remove() before this fault was raised: a new fault.
      if (fault.timestamp_expiry !== 0 && amdgpu_ih_ts_after(fault.timestamp_expiry, timestamp)) break;
      return true;
    }
    const tmp = fault.timestamp;
    fault = gmc.fault_ring[fault.next]!;
    if (fault.timestamp >= tmp) break;
  }
  fault = gmc.fault_ring[gmc.last_fault]!;
  fault.key = key;
  fault.timestamp = timestamp;
  fault.timestamp_expiry = 0;
  fault.next = gmc.fault_hash[hash]!;
  gmc.fault_hash[hash] = gmc.last_fault;
  gmc.last_fault = (gmc.last_fault + 1) % AMDGPU_GMC_FAULT_RING_SIZE;
  return false;
}

/**
 * amdgpu_gmc_filter_faults_remove(): lets the next retry of (addr, pasid) through: the entry
 * expires at the timestamp of the newest vector now in the fault ring (ih1, or the software
 * ring on parts without one), so faults already queued stay filtered.
 */
export function amdgpu_gmc_filter_faults_remove(adev: amdgpu_device, addr: number, pasid: number): void {
  using _ = ftrace(adev.k, "amdgpu_gmc_filter_faults_remove");
  const gmc = adev.gmc;
  if (adev.irq.retry_cam_enabled) return;
  const ih = adev.irq.ih1.ring_size ? adev.irq.ih1 : adev.irq.ih_soft;
  const funcs = adev.irq.ih_funcs;
  if (!funcs || !ih.ring_size) return;
  const last_wptr = funcs.get_wptr(adev, ih);
  const last_ts = funcs.decode_iv_ts(adev, ih, last_wptr, -1);
  const key = amdgpu_gmc_fault_key(addr, pasid);
  const hash = hash_64(key, AMDGPU_GMC_FAULT_HASH_ORDER);
  let fault = gmc.fault_ring[gmc.fault_hash[hash]!]!;
  for (;;) {
    if (fault.key === key) {
      fault.timestamp_expiry = last_ts;
      break;
    }
    const tmp = fault.timestamp;
    fault = gmc.fault_ring[fault.next]!;
    if (!(fault.timestamp < tmp)) break;
  }
}

/** amdgpu_gmc_noretry_set(): retry faults on unless amdgpu.noretry=1 (auto: on for XNACK parts). */
export function amdgpu_gmc_noretry_set(adev: amdgpu_device, param: number, xnack_capable: boolean): void {
  adev.gmc.noretry = param === -1 ? (xnack_capable ? 0 : 1) : param ? 1 : 0;
}
