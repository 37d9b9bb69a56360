// Helpers for the amdgpu KUnit suites (not a suite): reaching the driver's device and the GPU
// model of a booted machine, kernel BOs, SDMA copies, and a compute context — a VM bound to a
// KFD VMID with a user queue loaded the way KFD's no-HWS path does (hqd_load), so tests can run
// ISA programs whose every access goes through the GPU's VM translation.

import type { kunit } from "../../../../lib/kunit/test.ts";
import { MODULES, PCI_HOST } from "../../../../kernel/tokens.ts";
import type { MachineSpec } from "../../../../kernel/machine_spec.ts";
import type { AmdgpuModule } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_drv.ts";
import type { amdgpu_device } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu.ts";
import type { AmdGpuDevice } from "../../../../hw/amdgpu/device.ts";
import {
  amdgpu_bo_create, amdgpu_bo_create_kernel, amdgpu_bo_free_kernel, amdgpu_bo_reserve, amdgpu_bo_unref,
  amdgpu_bo_unreserve, AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS, AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, AMDGPU_GEM_DOMAIN_GTT,
  type amdgpu_bo, type amdgpu_kernel_bo,
} from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { ttm_bo_type } from "../../../../drivers/gpu/drm/ttm/ttm_bo.ts";
import { amdgpu_copy_buffer } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.ts";
import { dma_fence_put, dma_fence_wait_timeout, type dma_fence } from "../../../../drivers/dma-buf/dma-fence.ts";
import { msecs_to_jiffies } from "../../../../kernel/time/timekeeping.ts";
import {
  amdgpu_vm, amdgpu_vm_fini, amdgpu_vm_init, amdgpu_vm_make_compute, amdgpu_vm_pte_flags, amdgpu_vm_set_pasid,
  amdgpu_vm_update_range,
} from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_vm.ts";
import { amdgpu_gmc_pd_addr } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_gmc.ts";
import { amdgpu_pasid_alloc, amdgpu_pasid_free } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_ids.ts";
import {
  kgd_gfx_v9_hqd_destroy, kgd_gfx_v9_hqd_load, kgd_gfx_v9_program_sh_mem_settings, kgd_gfx_v9_set_pasid_vmid_mapping,
  kgd_gfx_v9_set_vm_context_page_table_base,
} from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gfx_v9.ts";
import { amdgpu_amdkfd_register_kfd, amdgpu_amdkfd_unregister_kfd, type kgd2kfd_calls } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd.ts";
import type { kfd_dev } from "../../../../drivers/gpu/drm/amd/amdkfd/kfd_priv.ts";
import { RREG32, WDOORBELL64 } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_device.ts";
import { amdgpu_gfx_with_grbm } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_gfx.ts";
import {
  CP_HQD_PERSISTENT_STATE__QSWITCH_MODE, CP_HQD_PQ_CONTROL__QUEUE_SIZE, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_OFFSET, REG_SET_FIELD,
  SH_MEM_CONFIG__RETRY_DISABLE, mmCP_HQD_ACTIVE, mmCP_HQD_PERSISTENT_STATE,
} from "../../../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";
import { V9_MQD_CWSR_ORDER, V9_MQD_HQD_ORDER, type v9_mqd } from "../../../../drivers/gpu/drm/amd/include/v9_structs.ts";
import { KFD_PREEMPT_TYPE_WAVEFRONT_RESET, type kfd_preempt_type } from "../../../../drivers/gpu/drm/amd/include/kgd_kfd_interface.ts";
import { TTM_PL_VRAM } from "../../../../include/drm/ttm/ttm_placement.ts";
import { AQL_PACKET_BYTES, assemble, aql_kernel_dispatch, type Instr } from "../../../../hw/amdgpu/isa.ts";

export const MiB = 2 ** 20;

/**
 * A machine with one GPU of `asic` and small memories, no IOMMU (the suites' default). amdkfd
 * stays out (the suites register their own kgd2kfd table and own the KFD VMIDs).
 */
export function gpu_machine(asic = "gfx90a", vram_size = 256 * MiB, extra: Partial<MachineSpec> = {}): MachineSpec {
  return { name: `amdgpu-${asic}`, ram_size: 2 * 2 ** 30, gpus: [{ asic, vram_size }], iommu: false, seed: 0, cmdline: "modprobe.blacklist=amdkfd", ...extra };
}

/** The amdgpu device of the machine's first GPU. */
export function get_adev(test: kunit): amdgpu_device {
  const mod = test.machine.symbol(MODULES).find_module("amdgpu");
  const adev = (mod?.instance as AmdgpuModule | undefined)?.devices[0];
  if (!adev) throw new Error("amdgpu did not bind the GPU");
  return adev;
}

/** The GPU's hardware model (for inspecting engine state in tests). */
export function get_gpu_hw(test: kunit): AmdGpuDevice {
  return test.machine.symbol(PCI_HOST).model(3 * 8) as AmdGpuDevice;
}

/** A pinned, mapped kernel BO (freed when the case ends). */
export async function kernel_bo(test: kunit, adev: amdgpu_device, size: number, domain: number): Promise<amdgpu_kernel_bo> {
  const k = await amdgpu_bo_create_kernel(adev, size, 4096, domain);
  if (typeof k === "number") throw new Error(`amdgpu_bo_create_kernel: ${k}`);
  test.add_action(() => amdgpu_bo_free_kernel(k.bo));
  return k;
}

/** An ordinary (evictable) BO, contiguous when `contiguous` so the CPU can map it in VRAM. */
export async function user_bo(test: kunit, adev: amdgpu_device, size: number, domain: number, contiguous = true): Promise<amdgpu_bo> {
  const bo = await amdgpu_bo_create(adev, {
    size, byte_align: 4096, domain, type: ttm_bo_type.ttm_bo_type_device,
    flags: AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED | (contiguous ? AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS : 0),
  });
  if (typeof bo === "number") throw new Error(`amdgpu_bo_create: ${bo}`);
  test.add_action(() => amdgpu_bo_unref(bo));
  return bo;
}

/** Waits for a fence (≤ `ms` of virtual time); returns the fence's error, 0, or -ETIME on timeout. */
export async function wait_fence(f: dma_fence, ms = 10000): Promise<number> {
  const left = await dma_fence_wait_timeout(f, false, msecs_to_jiffies(ms));
  const err = f.error;
  dma_fence_put(f);
  return left === 0 ? -62 : err;
}

/** An SDMA copy in VMID 0 (MC addresses), waited for; the job flushes VMID 0's TLB first. */
export async function sdma_copy(adev: amdgpu_device, src: number, dst: number, n: number): Promise<number> {
  const f = await amdgpu_copy_buffer(adev.mman.buffer_funcs_ring!, src, dst, n, null, true);
  if (typeof f === "number") return f;
  return wait_fence(f);
}

/** Deterministic bytes for a buffer. */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * A stand-in for amdkfd (the suites own the KFD VMIDs): a kgd2kfd table whose retry-fault hook
 * is `restore` and whose interrupt hook is `interrupt`, unregistered when the case ends.
 */
export async function register_fake_kfd(test: kunit, restore: kgd2kfd_calls["svm_range_restore_pages"],
  interrupt: kgd2kfd_calls["interrupt"] = () => {}): Promise<void> {
  const calls: kgd2kfd_calls = {
    probe: () => ({}) as kfd_dev,
    device_init: async () => true,
    device_exit: async () => {},
    interrupt,
    svm_range_restore_pages: restore,
  };
  const r = await amdgpu_amdkfd_register_kfd(test.k, calls);
  if (r) throw new Error(`amdgpu_amdkfd_register_kfd: ${r}`);
  test.add_action(() => amdgpu_amdkfd_unregister_kfd(test.k));
}

// ---- a compute context ----------------------------------------------------------------------

export interface perms {
  r: boolean;
  w: boolean;
  x: boolean;
}
export const RWX: perms = { r: true, w: true, x: true };
export const RW: perms = { r: true, w: true, x: false };

/** Virtual addresses the compute context uses. */
export const RING_VA = 0x1000_0000;
export const CODE_VA = 0x2000_0000;
export const CTRL_VA = 0x3000_0000;
export const SAVE_VA = 0x3800_0000;
export const SAVE_SIZE = 8192;
export const SAVE_CNTL_STACK_SIZE = 4096;

export interface compute_opts {
  vmid?: number;
  /** Per-process XNACK: shader accesses of the VMID may retry. */
  xnack?: boolean;
  /** Make the VM a compute (KFD) VM, so retry faults go to the KFD hook. */
  compute?: boolean;
  /** Give the queue a context save area (CWSR), so SAVE_WAVES can save its waves. */
  save_area?: boolean;
}

/**
 * A VM on a KFD VMID with one AQL queue (HQD pipe 0 queue 0), its ring, code and control page
 * mapped from GTT. `run()` submits a dispatch and waits for the CP to consume it.
 */
export class ComputeCtx {
  readonly vm = new amdgpu_vm();
  pasid = 0;
  vmid = 8;
  ring!: amdgpu_kernel_bo;
  code!: amdgpu_kernel_bo;
  ctrl!: amdgpu_kernel_bo;
  wptr = 0;
  doorbell = 0;
  mqd!: v9_mqd;
  /** The context save area (compute_opts.save_area). */
  save: amdgpu_kernel_bo | null = null;

  constructor(
    readonly test: kunit,
    readonly adev: amdgpu_device,
  ) {}

  static async create(test: kunit, adev: amdgpu_device, opts: compute_opts = {}): Promise<ComputeCtx> {
    const c = new ComputeCtx(test, adev);
    c.vmid = opts.vmid ?? 8;
    let r = await amdgpu_vm_init(adev, c.vm);
    if (r) throw new Error(`amdgpu_vm_init: ${r}`);
    c.pasid = amdgpu_pasid_alloc(adev.k);
    amdgpu_vm_set_pasid(adev, c.vm, c.pasid);
    if (opts.compute) amdgpu_vm_make_compute(adev, c.vm);
    test.add_action(async () => {
      await kgd_gfx_v9_hqd_destroy(adev, KFD_PREEMPT_TYPE_WAVEFRONT_RESET, 100, 0, 0);
      kgd_gfx_v9_set_pasid_vmid_mapping(adev, 0, c.vmid);
      await amdgpu_vm_fini(adev, c.vm);
      amdgpu_pasid_free(adev.k, c.pasid);
    });
    kgd_gfx_v9_set_vm_context_page_table_base(adev, c.vmid, amdgpu_gmc_pd_addr(adev, c.vm.root!.bo));
    kgd_gfx_v9_set_pasid_vmid_mapping(adev, c.pasid, c.vmid);
    await kgd_gfx_v9_program_sh_mem_settings(adev, c.vmid, REG_SET_FIELD(0, SH_MEM_CONFIG__RETRY_DISABLE, opts.xnack === false ? 1 : 0), 0);
    c.ring = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
    c.code = await kernel_bo(test, adev, 16384, AMDGPU_GEM_DOMAIN_GTT);
    c.ctrl = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
    c.ctrl.cpu.memset(0, 0, 4096);
    for (const [va, bo] of [[RING_VA, c.ring.bo], [CODE_VA, c.code.bo], [CTRL_VA, c.ctrl.bo]] as const) {
      r = await c.map(va, bo, RWX, true);
      if (r) throw new Error(`map: ${r}`);
    }
    c.doorbell = adev.doorbell_index.first_non_cp + 64;
    const pq_control = REG_SET_FIELD(0, CP_HQD_PQ_CONTROL__QUEUE_SIZE, Math.log2(4096 / 4) - 1) >>> 0;
    c.mqd = {
      cp_hqd_active: 0, cp_hqd_vmid: c.vmid, cp_hqd_pq_base_lo: RING_VA / 256, cp_hqd_pq_base_hi: 0, cp_hqd_pq_rptr: 0,
      cp_hqd_pq_rptr_report_addr_lo: CTRL_VA, cp_hqd_pq_rptr_report_addr_hi: 0, cp_hqd_pq_wptr_poll_addr_lo: 0,
      cp_hqd_pq_wptr_poll_addr_hi: 0, cp_hqd_pq_doorbell_control: REG_SET_FIELD(0, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_OFFSET, c.doorbell),
      cp_hqd_pq_control: pq_control, cp_hqd_pq_wptr_lo: 0, cp_hqd_pq_wptr_hi: 0, cp_hqd_persistent_state: 0,
      cp_hqd_ctx_save_base_addr_lo: 0, cp_hqd_ctx_save_base_addr_hi: 0, cp_hqd_ctx_save_size: 0, cp_hqd_cntl_stack_offset: 0,
      cp_hqd_cntl_stack_size: 0, cp_hqd_wg_state_offset: 0, compute_restart_x: 0,
    };
    if (opts.save_area) await c.add_save_area();
    r = await kgd_gfx_v9_hqd_load(adev, c.mqd, 0, 0);
    if (r) throw new Error(`hqd_load: ${r}`);
    return c;
  }

  /** A context save area at SAVE_VA as init_mqd programs one: control stack first, then workgroup state. */
  private async add_save_area(): Promise<void> {
    this.save = await kernel_bo(this.test, this.adev, SAVE_SIZE, AMDGPU_GEM_DOMAIN_GTT);
    this.save.cpu.memset(0, 0, SAVE_SIZE);
    const r = await this.map(SAVE_VA, this.save.bo, RW, true);
    if (r) throw new Error(`map: ${r}`);
    Object.assign(this.mqd, {
      cp_hqd_persistent_state: REG_SET_FIELD(0, CP_HQD_PERSISTENT_STATE__QSWITCH_MODE, 1), cp_hqd_ctx_save_base_addr_lo: SAVE_VA,
      cp_hqd_ctx_save_size: SAVE_SIZE, cp_hqd_cntl_stack_size: SAVE_CNTL_STACK_SIZE, cp_hqd_cntl_stack_offset: SAVE_CNTL_STACK_SIZE,
      cp_hqd_wg_state_offset: SAVE_CNTL_STACK_SIZE,
    });
  }

  /**
   * Preempts the queue (hqd_destroy with `type`) and keeps in the MQD every register the CP left,
   * as the CP's write-back to the MQD would; returns hqd_destroy's result.
   */
  async preempt(type: kfd_preempt_type, timeout_ms = 100): Promise<number> {
    const r = await kgd_gfx_v9_hqd_destroy(this.adev, type, timeout_ms, 0, 0);
    await amdgpu_gfx_with_grbm(this.adev, 1, 0, 0, 0, () => {
      V9_MQD_HQD_ORDER.forEach((f, i) => (this.mqd[f] = RREG32(this.adev, mmCP_HQD_ACTIVE + i)));
      V9_MQD_CWSR_ORDER.forEach((f, i) => (this.mqd[f] = RREG32(this.adev, mmCP_HQD_PERSISTENT_STATE + i)));
    });
    return r;
  }

  /** Loads the MQD again (the queue resumes from what preempt() kept). */
  reload(): Promise<number> {
    return kgd_gfx_v9_hqd_load(this.adev, this.mqd, 0, 0);
  }

  /**
   * Maps `pages` pages of `bo` from byte `offset` at `va` (system pages get SYSTEM|SNOOPED),
   * flushing the VMID's TLB when asked.
   */
  async map(va: number, bo: amdgpu_bo, perms: perms, flush = true, offset = 0, pages = bo.tbo.base_size / 4096): Promise<number> {
    const adev = this.adev;
    const root = this.vm.root!.bo;
    let r = await amdgpu_bo_reserve(root, true);
    if (r) return r;
    try {
      const res = bo.tbo.resource!;
      const vram = res.mem_type === TTM_PL_VRAM;
      const f = amdgpu_vm_pte_flags(perms.r, perms.w, perms.x, !vram);
      r = await amdgpu_vm_update_range(adev, this.vm, false, false, flush, false, null, va / 4096, va / 4096 + pages - 1, f,
        offset, adev.vm_manager.vram_base_offset, vram ? res : null, vram ? null : bo.tbo.ttm!.dma_address, null);
    } finally {
      amdgpu_bo_unreserve(root);
    }
    return r;
  }

  /** Writes a program at CODE_VA + `slot` * 4 KiB. */
  load_program(prog: readonly Instr[], slot = 0): number {
    this.code.cpu.memcpy_to(slot * 4096, assemble(prog));
    return CODE_VA + slot * 4096;
  }

  /** Submits one dispatch of `n_wg` single-lane workgroups; kernarg dwords at CTRL_VA+256. */
  submit(kernel: number, kernargs: readonly number[], n_wg = 1): void {
    const kp = new Uint8Array(kernargs.length * 8);
    const dv = new DataView(kp.buffer);
    kernargs.forEach((v, i) => {
      dv.setUint32(i * 8, v % 2 ** 32, true);
      dv.setUint32(i * 8 + 4, Math.floor(v / 2 ** 32), true);
    });
    this.ctrl.cpu.memcpy_to(256, kp);
    const pkt = aql_kernel_dispatch({ workgroup_size_x: 1, grid_size_x: n_wg, kernel_object: kernel, kernarg_address: CTRL_VA + 256, completion_signal: 0 });
    this.ring.cpu.memcpy_to((this.wptr % (4096 / AQL_PACKET_BYTES)) * AQL_PACKET_BYTES, pkt);
    this.wptr++;
    WDOORBELL64(this.adev, this.doorbell, this.wptr);
  }

  /** The CP's reported read index. */
  rptr(): number {
    return this.ctrl.cpu.rd32(0);
  }

  /** Waits (sleeping, ≤ `ms` virtual ms) until the CP consumed every submitted packet. */
  async wait_idle(ms = 1000): Promise<boolean> {
    const k = this.adev.k;
    const end = k.ktime_get() + ms * 1e6;
    while (this.rptr() !== this.wptr) {
      if (k.ktime_get() >= end) return false;
      await k.usleep_range(10, 20);
    }
    return true;
  }

  async run(kernel: number, kernargs: readonly number[], ms = 1000): Promise<boolean> {
    this.submit(kernel, kernargs);
    return this.wait_idle(ms);
  }
}
