// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_sdma.c and amdgpu_sdma.h (Linux 6.8): SDMA state
// shared by the sdma_v4_0 and sdma_v5_0 IP blocks — the instances and their rings, the trap and
// illegal-instruction interrupt sources — and, in kemu, the packet emitters, ring functions,
// ring/IB tests and queue start/stop those two files have in common on kemu's register map
// (the kernel keeps near-identical copies in each sdma_v*.c).

import type { amdgpu_device } from "./amdgpu.ts";
import { amdgpu_ring, amdgpu_ring_alloc, amdgpu_ring_commit, amdgpu_ring_init, amdgpu_ring_test_helper, amdgpu_ring_write, amdgpu_ring_fini, amdgpu_ring_type, type amdgpu_ring_funcs, AMDGPU_FENCE_FLAG_64BIT, AMDGPU_FENCE_FLAG_INT } from "./amdgpu_ring.ts";
import { amdgpu_irq_add_id, amdgpu_irq_src, type amdgpu_irq_src_funcs } from "./amdgpu_irq.ts";
import type { amdgpu_iv_entry } from "./amdgpu_ih.ts";
import { amdgpu_fence_process } from "./amdgpu_fence.ts";
import { amdgpu_ib, amdgpu_ib_free, amdgpu_ib_get, amdgpu_ib_schedule, amdgpu_ib_pool_type } from "./amdgpu_ib.ts";
import { amdgpu_device_wb_free, amdgpu_device_wb_get, RREG32, WDOORBELL64, WREG32 } from "./amdgpu_device.ts";
import { amdgpu_ttm_set_buffer_funcs_status, type amdgpu_buffer_funcs } from "./amdgpu_ttm.ts";
import type { amdgpu_job } from "./amdgpu_job.ts";
import { amdgpu_job_sched_fault } from "./amdgpu_job.ts";
import { amdgpu_gmc_emit_flush } from "./amdgpu_gmc.ts";
import { dma_fence_put, dma_fence_wait_timeout } from "../../../../dma-buf/dma-fence.ts";
import { msecs_to_jiffies } from "../../../../../kernel/time/timekeeping.ts";
import { EINVAL, ETIMEDOUT } from "../../../../../include/uapi/asm-generic/errno.ts";
import {
  REG_SET_FIELD, SDMA0_CNTL__TRAP_ENABLE, SDMA0_F32_CNTL__HALT, SDMA0_GFX_DOORBELL__ENABLE, SDMA0_GFX_DOORBELL_OFFSET__OFFSET,
  SDMA0_GFX_IB_CNTL__IB_ENABLE, SDMA0_GFX_RB_CNTL__RB_ENABLE, SDMA0_GFX_RB_CNTL__RB_SIZE, SDMA0_GFX_RB_CNTL__RPTR_WRITEBACK_ENABLE,
  lower_32_bits, mmSDMA, sdmaCNTL, sdmaF32_CNTL, sdmaGFX_DOORBELL, sdmaGFX_DOORBELL_OFFSET, sdmaGFX_IB_CNTL, sdmaGFX_RB_BASE,
  sdmaGFX_RB_BASE_HI, sdmaGFX_RB_CNTL, sdmaGFX_RB_RPTR, sdmaGFX_RB_RPTR_ADDR_HI, sdmaGFX_RB_RPTR_ADDR_LO, sdmaGFX_RB_RPTR_HI,
  sdmaGFX_RB_WPTR, sdmaGFX_RB_WPTR_HI, upper_32_bits, sdmaDBG_PACKET_HEADER, sdmaDBG_PACKET_RPTR,
} from "../include/asic_reg/kemu_gpu_regs.ts";
import {
  SDMA_OP_CONST_FILL, SDMA_OP_COPY, SDMA_OP_FENCE, SDMA_OP_INDIRECT, SDMA_OP_NOP, SDMA_OP_POLL_REGMEM, SDMA_OP_SRBM_WRITE,
  SDMA_OP_TRAP, SDMA_OP_WRITE, SDMA_PKT_COPY_LINEAR_HEADER_TMZ, SDMA_PKT_HEADER_OP, SDMA_PKT_HEADER_SUB_OP,
  SDMA_PKT_INDIRECT_HEADER_VMID, SDMA_PKT_NOP_HEADER_COUNT, SDMA_PKT_POLL_REGMEM_DW5_INTERVAL, SDMA_PKT_POLL_REGMEM_DW5_RETRY_COUNT,
  SDMA_PKT_POLL_REGMEM_HEADER_FUNC, SDMA_PKT_POLL_REGMEM_HEADER_HDP_FLUSH, SDMA_PKT_POLL_REGMEM_HEADER_MEM_POLL,
  SDMA_PKT_SRBM_WRITE_HEADER_BYTE_EN, SDMA_PKT_TRAP_INT_CONTEXT_INT_CONTEXT, SDMA_SUBOP_COPY_LINEAR, SDMA_SUBOP_WRITE_LINEAR,
  SDMA_COPY_MAX_BYTES, sdma_op_name, SDMA_GET_OP, SDMA_GET_SUB_OP,
} from "./vega10_sdma_pkt_open.ts";
import { SDMA0_4_0__SRCID__SDMA_SRBMWRITE, SDMA0_4_0__SRCID__SDMA_TRAP } from "../include/ivsrcid/ivsrcid.ts";
import { iosys_map_offset } from "../../../../../include/linux/iosys-map.ts";
import { mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";

export const AMDGPU_SDMA_IRQ_INSTANCE0 = 0;

export class amdgpu_sdma_instance {
  constructor(readonly ring: amdgpu_ring) {}
}

export class amdgpu_sdma {
  instance: amdgpu_sdma_instance[] = [];
  num_instances = 0;
  readonly trap_irq = new amdgpu_irq_src();
  readonly illegal_inst_irq = new amdgpu_irq_src();
  /** IH client id of each instance. */
  client_ids: readonly number[] = [];
}

/** What distinguishes sdma_v4_0 from sdma_v5_0 in kemu. */
export interface sdma_version {
  name: string;
  /** AMDGPU_MMHUB_0 (GFX9) or AMDGPU_GFXHUB_0 (GFX10). */
  vmhub: number;
  client_ids: readonly number[];
}

// ---- packets -------------------------------------------------------------------------------

/** sdma_v*_emit_copy_buffer(): one COPY_LINEAR (≤ 4 MiB). */
export function sdma_emit_copy_buffer(ib: amdgpu_ib, src: number, dst: number, byte_count: number, copy_flags: number): void {
  const p = ib.ptr;
  p[ib.length_dw++] = SDMA_PKT_HEADER_OP(SDMA_OP_COPY) | SDMA_PKT_HEADER_SUB_OP(SDMA_SUBOP_COPY_LINEAR) | SDMA_PKT_COPY_LINEAR_HEADER_TMZ(copy_flags & 1);
  p[ib.length_dw++] = byte_count - 1;
  p[ib.length_dw++] = 0;
  p[ib.length_dw++] = lower_32_bits(src);
  p[ib.length_dw++] = upper_32_bits(src);
  p[ib.length_dw++] = lower_32_bits(dst);
  p[ib.length_dw++] = upper_32_bits(dst);
}

/** sdma_v*_emit_fill_buffer(): one CONST_FILL of a dword pattern (≤ 4 MiB). */
export function sdma_emit_fill_buffer(ib: amdgpu_ib, src_data: number, dst: number, byte_count: number): void {
  const p = ib.ptr;
  p[ib.length_dw++] = SDMA_PKT_HEADER_OP(SDMA_OP_CONST_FILL);
  p[ib.length_dw++] = lower_32_bits(dst);
  p[ib.length_dw++] = upper_32_bits(dst);
  p[ib.length_dw++] = src_data >>> 0;
  p[ib.length_dw++] = byte_count - 1;
}

export const sdma_buffer_funcs: amdgpu_buffer_funcs = {
  copy_max_bytes: SDMA_COPY_MAX_BYTES,
  copy_num_dw: 7,
  emit_copy_buffer: sdma_emit_copy_buffer,
  fill_max_bytes: SDMA_COPY_MAX_BYTES,
  fill_num_dw: 5,
  emit_fill_buffer: sdma_emit_fill_buffer,
};

// ---- ring functions --------------------------------------------------------------------------

function sdma_instance_of(ring: amdgpu_ring): number {
  return ring.adev.sdma.instance.findIndex((i) => i.ring === ring);
}

/** get_rptr(): the engine's byte rptr from the writeback slot, in dwords. */
function sdma_ring_get_rptr(ring: amdgpu_ring): number {
  const wb = ring.adev.wb.cpu!;
  const lo = wb.rd32(ring.rptr_offs * 4);
  const hi = wb.rd32(ring.rptr_offs * 4 + 4);
  return (lo + hi * 2 ** 32) / 4;
}

/** set_wptr(): 64-bit byte wptr to the writeback shadow and the doorbell. */
function sdma_ring_set_wptr(ring: amdgpu_ring): void {
  const adev = ring.adev;
  const bytes = ring.wptr * 4;
  const wb = adev.wb.cpu!;
  wb.wr32(ring.wptr_offs * 4, lower_32_bits(bytes));
  wb.wr32(ring.wptr_offs * 4 + 4, upper_32_bits(bytes));
  if (ring.use_doorbell) WDOORBELL64(adev, ring.doorbell_index, bytes);
  else {
    const i = sdma_instance_of(ring);
    WREG32(adev, mmSDMA(i, sdmaGFX_RB_WPTR), lower_32_bits(bytes));
    WREG32(adev, mmSDMA(i, sdmaGFX_RB_WPTR_HI), upper_32_bits(bytes));
  }
}

/** insert_nop(): a burst NOP covering `count` dwords. */
function sdma_ring_insert_nop(ring: amdgpu_ring, count: number): void {
  for (let i = 0; i < count; i++) {
    amdgpu_ring_write(ring, i === 0 ? SDMA_PKT_HEADER_OP(SDMA_OP_NOP) | SDMA_PKT_NOP_HEADER_COUNT(count - 1) : ring.funcs.nop);
  }
}

/** pad_ib(): burst NOP up to a multiple of 8 dwords. */
function sdma_ring_pad_ib(_ring: amdgpu_ring, ib: amdgpu_ib): void {
  const pad = (8 - (ib.length_dw % 8)) % 8;
  for (let i = 0; i < pad; i++) {
    ib.ptr[ib.length_dw++] = i === 0 ? SDMA_PKT_HEADER_OP(SDMA_OP_NOP) | SDMA_PKT_NOP_HEADER_COUNT(pad - 1) : SDMA_PKT_HEADER_OP(SDMA_OP_NOP);
  }
}

/** emit_ib(): NOPs so the 6-dword INDIRECT ends on an 8-dword boundary, then INDIRECT. */
function sdma_ring_emit_ib(ring: amdgpu_ring, job: amdgpu_job | null, ib: amdgpu_ib): void {
  const vmid = job?.vmid ?? 0;
  sdma_ring_insert_nop(ring, (2 - (ring.wptr % 8) + 8) % 8);
  amdgpu_ring_write(ring, SDMA_PKT_HEADER_OP(SDMA_OP_INDIRECT) | SDMA_PKT_INDIRECT_HEADER_VMID(vmid & 0xf));
  amdgpu_ring_write(ring, lower_32_bits(ib.gpu_addr) & 0xffffffe0);
  amdgpu_ring_write(ring, upper_32_bits(ib.gpu_addr));
  amdgpu_ring_write(ring, ib.length_dw);
  amdgpu_ring_write(ring, 0);
  amdgpu_ring_write(ring, 0);
}

/** emit_fence(): FENCE with the low (and, for 64-bit, high) half of seq, then TRAP. */
function sdma_ring_emit_fence(ring: amdgpu_ring, addr: number, seq: number, flags: number): void {
  amdgpu_ring_write(ring, SDMA_PKT_HEADER_OP(SDMA_OP_FENCE));
  amdgpu_ring_write(ring, lower_32_bits(addr) & 0xfffffffc);
  amdgpu_ring_write(ring, upper_32_bits(addr));
  amdgpu_ring_write(ring, lower_32_bits(seq));
  if (flags & AMDGPU_FENCE_FLAG_64BIT) {
    addr += 4;
    amdgpu_ring_write(ring, SDMA_PKT_HEADER_OP(SDMA_OP_FENCE));
    amdgpu_ring_write(ring, lower_32_bits(addr) & 0xfffffffc);
    amdgpu_ring_write(ring, upper_32_bits(addr));
    amdgpu_ring_write(ring, upper_32_bits(seq));
  }
  if (flags & AMDGPU_FENCE_FLAG_INT) {
    amdgpu_ring_write(ring, SDMA_PKT_HEADER_OP(SDMA_OP_TRAP));
    amdgpu_ring_write(ring, SDMA_PKT_TRAP_INT_CONTEXT_INT_CONTEXT(0));
  }
}

/** emit_wreg(): SRBM_WRITE of a register (dword offset). */
function sdma_ring_emit_wreg(ring: amdgpu_ring, reg: number, val: number): void {
  amdgpu_ring_write(ring, SDMA_PKT_HEADER_OP(SDMA_OP_SRBM_WRITE) | SDMA_PKT_SRBM_WRITE_HEADER_BYTE_EN(0xf));
  amdgpu_ring_write(ring, reg);
  amdgpu_ring_write(ring, val);
}

/** emit_reg_wait(): POLL_REGMEM on a register until (value & mask) == val. */
function sdma_ring_emit_reg_wait(ring: amdgpu_ring, reg: number, val: number, mask: number): void {
  amdgpu_ring_write(ring, SDMA_PKT_HEADER_OP(SDMA_OP_POLL_REGMEM) | SDMA_PKT_POLL_REGMEM_HEADER_HDP_FLUSH(0) |
    SDMA_PKT_POLL_REGMEM_HEADER_MEM_POLL(0) | SDMA_PKT_POLL_REGMEM_HEADER_FUNC(3));
  amdgpu_ring_write(ring, reg * 4);
  amdgpu_ring_write(ring, 0);
  amdgpu_ring_write(ring, val);
  amdgpu_ring_write(ring, mask);
  amdgpu_ring_write(ring, SDMA_PKT_POLL_REGMEM_DW5_RETRY_COUNT(0xfff) | SDMA_PKT_POLL_REGMEM_DW5_INTERVAL(10));
}

/** Polls a writeback dword until it holds `want`, sleeping 1 µs between reads (≤ usec_timeout). */
async function sdma_poll_wb(adev: amdgpu_device, index: number, want: number): Promise<boolean> {
  for (let i = 0; i < adev.usec_timeout; i++) {
    if (adev.wb.cpu!.rd32(index * 4) === want) return true;
    await adev.k.usleep_range(1, 2);
  }
  return false;
}

/**
 * test_ring(): a WRITE_LINEAR of 0xDEADBEEF to a writeback slot. The kernel busy-waits with
 * udelay(1); kemu sleeps 1 µs per poll so the engine, which runs on virtual time, can progress.
 */
async function sdma_ring_test_ring(ring: amdgpu_ring): Promise<number> {
  const adev = ring.adev;
  const index = amdgpu_device_wb_get(adev);
  if (index < 0) return index;
  const gpu_addr = adev.wb.gpu_addr + index * 4;
  adev.wb.cpu!.wr32(index * 4, 0xcafedead);
  let r = amdgpu_ring_alloc(ring, 20);
  if (r) {
    amdgpu_device_wb_free(adev, index);
    return r;
  }
  amdgpu_ring_write(ring, SDMA_PKT_HEADER_OP(SDMA_OP_WRITE) | SDMA_PKT_HEADER_SUB_OP(SDMA_SUBOP_WRITE_LINEAR));
  amdgpu_ring_write(ring, lower_32_bits(gpu_addr));
  amdgpu_ring_write(ring, upper_32_bits(gpu_addr));
  amdgpu_ring_write(ring, 0);
  amdgpu_ring_write(ring, 0xdeadbeef);
  amdgpu_ring_commit(ring);
  r = (await sdma_poll_wb(adev, index, 0xdeadbeef)) ? 0 : -ETIMEDOUT;
  amdgpu_device_wb_free(adev, index);
  return r;
}

/** test_ib(): the same write from an IB, completion through the fence. */
async function sdma_ring_test_ib(ring: amdgpu_ring, timeout_ms: number): Promise<number> {
  const adev = ring.adev;
  const index = amdgpu_device_wb_get(adev);
  if (index < 0) return index;
  const gpu_addr = adev.wb.gpu_addr + index * 4;
  adev.wb.cpu!.wr32(index * 4, 0xcafedead);
  const ib = new amdgpu_ib();
  let r = await amdgpu_ib_get(adev, 256, amdgpu_ib_pool_type.AMDGPU_IB_POOL_DIRECT, ib);
  if (r) {
    amdgpu_device_wb_free(adev, index);
    return r;
  }
  ib.ptr[0] = SDMA_PKT_HEADER_OP(SDMA_OP_WRITE) | SDMA_PKT_HEADER_SUB_OP(SDMA_SUBOP_WRITE_LINEAR);
  ib.ptr[1] = lower_32_bits(gpu_addr);
  ib.ptr[2] = upper_32_bits(gpu_addr);
  ib.ptr[3] = 0;
  ib.ptr[4] = 0xdeadbeef;
  ib.length_dw = 5;
  sdma_ring_pad_ib(ring, ib);
  await mutex_lock(ring.lock);
  const f = await amdgpu_ib_schedule(ring, [ib], null).finally(() => mutex_unlock(ring.lock));
  if (typeof f === "number") {
    amdgpu_ib_free(ib, null);
    amdgpu_device_wb_free(adev, index);
    return f;
  }
  const left = await dma_fence_wait_timeout(f, false, msecs_to_jiffies(timeout_ms));
  r = left === 0 ? -ETIMEDOUT : left < 0 ? left : adev.wb.cpu!.rd32(index * 4) === 0xdeadbeef ? 0 : -EINVAL;
  amdgpu_ib_free(ib, f);
  dma_fence_put(f);
  amdgpu_device_wb_free(adev, index);
  return r;
}

export function sdma_ring_funcs(v: sdma_version): amdgpu_ring_funcs {
  return {
    type: amdgpu_ring_type.AMDGPU_RING_TYPE_SDMA,
    align_mask: 0xf,
    nop: SDMA_PKT_HEADER_OP(SDMA_OP_NOP),
    support_64bit_ptrs: true,
    vmhub: v.vmhub,
    get_rptr: sdma_ring_get_rptr,
    get_wptr: (ring) => ring.wptr,
    set_wptr: sdma_ring_set_wptr,
    // VM flush (3 SRBM writes + a poll) + fence (with 64-bit half) + trap, plus alignment slack.
    emit_frame_size: 3 * 3 + 6 + 8 + 2 + 16,
    emit_ib_size: 8 + 6,
    emit_ib: sdma_ring_emit_ib,
    emit_fence: sdma_ring_emit_fence,
    emit_vm_flush: (ring, vmid, pd_addr) => {
      amdgpu_gmc_emit_flush(ring, vmid, pd_addr);
    },
    emit_wreg: sdma_ring_emit_wreg,
    emit_reg_wait: sdma_ring_emit_reg_wait,
    test_ring: sdma_ring_test_ring,
    test_ib: sdma_ring_test_ib,
    insert_nop: sdma_ring_insert_nop,
    pad_ib: sdma_ring_pad_ib,
  };
}

// ---- interrupts ------------------------------------------------------------------------------

function sdma_seq_of_client(adev: amdgpu_device, client_id: number): number {
  return adev.sdma.client_ids.indexOf(client_id);
}

/** set_trap_irq_state(): SDMA{i}_CNTL.TRAP_ENABLE. */
function sdma_set_trap_irq_state(adev: amdgpu_device, _src: amdgpu_irq_src, type: number, state: number): number {
  const i = type - AMDGPU_SDMA_IRQ_INSTANCE0;
  if (i < 0 || i >= adev.sdma.num_instances) return -EINVAL;
  const reg = mmSDMA(i, sdmaCNTL);
  WREG32(adev, reg, REG_SET_FIELD(RREG32(adev, reg), SDMA0_CNTL__TRAP_ENABLE, state ? 1 : 0));
  return 0;
}

/** process_trap_irq(): the instance's GFX queue (ring_id 0) completed fences. */
function sdma_process_trap_irq(adev: amdgpu_device, _src: amdgpu_irq_src, entry: amdgpu_iv_entry): number {
  const i = sdma_seq_of_client(adev, entry.client_id);
  if (i < 0) return 0;
  if (entry.ring_id === 0) amdgpu_fence_process(adev.sdma.instance[i]!.ring);
  return 1;
}

/**
 * process_illegal_inst_irq(): the engine stopped on a packet it could not execute. Logged with
 * the decoded header and position, and the ring's scheduler is told (drm_sched_fault), which
 * runs the job timeout handler at once.
 */
function sdma_process_illegal_inst_irq(adev: amdgpu_device, _src: amdgpu_irq_src, entry: amdgpu_iv_entry): number {
  const i = sdma_seq_of_client(adev, entry.client_id);
  if (i < 0) return 0;
  const ring = adev.sdma.instance[i]!.ring;
  const header = entry.src_data[0]!;
  adev.k.pr_err(`[drm:sdma_process_illegal_inst_irq [amdgpu]] *ERROR* Illegal instruction in SDMA command stream`);
  adev.k.dev_err(adev, `${ring.name}: packet header 0x${header.toString(16).padStart(8, "0")} (op ${sdma_op_name(header)}, op 0x${SDMA_GET_OP(header).toString(16)}, sub_op 0x${SDMA_GET_SUB_OP(header).toString(16)}) at ${entry.src_data[2] ? "IB" : "ring"} offset 0x${entry.src_data[1]!.toString(16)}`);
  adev.k.dev_err(adev, `${ring.name}: SDMA_DBG_PACKET_HEADER 0x${RREG32(adev, mmSDMA(i, sdmaDBG_PACKET_HEADER)).toString(16)} SDMA_DBG_PACKET_RPTR 0x${RREG32(adev, mmSDMA(i, sdmaDBG_PACKET_RPTR)).toString(16)}`);
  // Only the kernel's GFX queue (ring_id 0) has a scheduler; a user (RLC) queue just stops.
  if (entry.ring_id === 0) amdgpu_job_sched_fault(ring);
  return 1;
}

const sdma_trap_irq_funcs: amdgpu_irq_src_funcs = { set: sdma_set_trap_irq_state, process: sdma_process_trap_irq };
const sdma_illegal_inst_irq_funcs: amdgpu_irq_src_funcs = { process: sdma_process_illegal_inst_irq };

// ---- IP block lifecycle ---------------------------------------------------------------------

/** sw_init(): interrupt sources per instance and one GFX ring each. */
export async function sdma_sw_init(adev: amdgpu_device, v: sdma_version, num_instances: number): Promise<number> {
  const sdma = adev.sdma;
  sdma.num_instances = num_instances;
  sdma.client_ids = v.client_ids.slice(0, num_instances);
  sdma.trap_irq.funcs = sdma_trap_irq_funcs;
  sdma.trap_irq.num_types = num_instances;
  sdma.illegal_inst_irq.funcs = sdma_illegal_inst_irq_funcs;
  for (let i = 0; i < num_instances; i++) {
    let r = amdgpu_irq_add_id(adev, sdma.client_ids[i]!, SDMA0_4_0__SRCID__SDMA_TRAP, sdma.trap_irq);
    if (!r) r = amdgpu_irq_add_id(adev, sdma.client_ids[i]!, SDMA0_4_0__SRCID__SDMA_SRBMWRITE, sdma.illegal_inst_irq);
    if (r) return r;
  }
  const funcs = sdma_ring_funcs(v);
  for (let i = 0; i < num_instances; i++) {
    const ring = new amdgpu_ring(adev, `sdma${i}`);
    ring.funcs = funcs;
    ring.use_doorbell = true;
    ring.doorbell_index = adev.doorbell_index.sdma_engine[i]!;
    ring.sched.timeout_ms = adev.params.lockup_timeout;
    sdma.instance.push(new amdgpu_sdma_instance(ring));
    const r = await amdgpu_ring_init(adev, ring, 1024, sdma.trap_irq, AMDGPU_SDMA_IRQ_INSTANCE0 + i);
    if (r) return r;
  }
  adev.mman.buffer_funcs = sdma_buffer_funcs;
  adev.mman.buffer_funcs_ring = sdma.instance[0]!.ring;
  return 0;
}

export function sdma_sw_fini(adev: amdgpu_device): number {
  for (const inst of adev.sdma.instance) amdgpu_ring_fini(inst.ring);
  adev.sdma.instance = [];
  return 0;
}

/** sdma_v*_gfx_resume(): program each GFX queue, start the engine, test the ring. */
export async function sdma_hw_init(adev: amdgpu_device): Promise<number> {
  for (let i = 0; i < adev.sdma.num_instances; i++) {
    const ring = adev.sdma.instance[i]!.ring;
    const reg = (r: number) => mmSDMA(i, r);
    WREG32(adev, reg(sdmaF32_CNTL), REG_SET_FIELD(0, SDMA0_F32_CNTL__HALT, 1));
    let rb_cntl = REG_SET_FIELD(0, SDMA0_GFX_RB_CNTL__RB_SIZE, Math.log2(ring.ring_size / 4));
    rb_cntl = REG_SET_FIELD(rb_cntl, SDMA0_GFX_RB_CNTL__RPTR_WRITEBACK_ENABLE, 1);
    WREG32(adev, reg(sdmaGFX_RB_CNTL), rb_cntl);
    WREG32(adev, reg(sdmaGFX_RB_RPTR), 0);
    WREG32(adev, reg(sdmaGFX_RB_RPTR_HI), 0);
    WREG32(adev, reg(sdmaGFX_RB_WPTR), 0);
    WREG32(adev, reg(sdmaGFX_RB_WPTR_HI), 0);
    const rptr_addr = adev.wb.gpu_addr + ring.rptr_offs * 4;
    WREG32(adev, reg(sdmaGFX_RB_RPTR_ADDR_HI), upper_32_bits(rptr_addr));
    WREG32(adev, reg(sdmaGFX_RB_RPTR_ADDR_LO), lower_32_bits(rptr_addr) & 0xfffffffc);
    WREG32(adev, reg(sdmaGFX_RB_BASE), Math.floor(ring.gpu_addr / 256) % 2 ** 32);
    WREG32(adev, reg(sdmaGFX_RB_BASE_HI), Math.floor(ring.gpu_addr / 2 ** 40));
    ring.wptr = 0;
    const wb = iosys_map_offset(adev.wb.cpu!, ring.rptr_offs * 4);
    wb.wr32(0, 0);
    wb.wr32(4, 0);
    WREG32(adev, reg(sdmaGFX_DOORBELL), REG_SET_FIELD(0, SDMA0_GFX_DOORBELL__ENABLE, ring.use_doorbell ? 1 : 0));
    WREG32(adev, reg(sdmaGFX_DOORBELL_OFFSET), REG_SET_FIELD(0, SDMA0_GFX_DOORBELL_OFFSET__OFFSET, ring.doorbell_index));
    sdma_ring_set_wptr(ring);
    WREG32(adev, reg(sdmaGFX_RB_CNTL), REG_SET_FIELD(rb_cntl, SDMA0_GFX_RB_CNTL__RB_ENABLE, 1));
    WREG32(adev, reg(sdmaGFX_IB_CNTL), REG_SET_FIELD(0, SDMA0_GFX_IB_CNTL__IB_ENABLE, 1));
    WREG32(adev, reg(sdmaF32_CNTL), 0);
    const r = await amdgpu_ring_test_helper(ring);
    if (r) return r;
    if (adev.mman.buffer_funcs_ring === ring) await amdgpu_ttm_set_buffer_funcs_status(adev, true);
  }
  return 0;
}

/** sdma_v*_gfx_stop() + halt: queues off, buffer funcs off. */
export async function sdma_hw_fini(adev: amdgpu_device): Promise<number> {
  await amdgpu_ttm_set_buffer_funcs_status(adev, false);
  for (let i = 0; i < adev.sdma.num_instances; i++) {
    WREG32(adev, mmSDMA(i, sdmaGFX_RB_CNTL), 0);
    WREG32(adev, mmSDMA(i, sdmaGFX_IB_CNTL), 0);
    WREG32(adev, mmSDMA(i, sdmaF32_CNTL), REG_SET_FIELD(0, SDMA0_F32_CNTL__HALT, 1));
    adev.sdma.instance[i]!.ring.sched.ready = false;
  }
  return 0;
}
