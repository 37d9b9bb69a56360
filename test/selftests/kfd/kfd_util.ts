// Helpers shared by the kfd selftests (no program here): the machine, a process with the thunk
// open in a given XNACK mode, kfdtest's RegisterSVMRange, dword access from the CPU, and a look at
// the kernel-side state a test may check after the process is gone.

import { GiB, type MachineSpec } from "../../../kernel/machine_spec.ts";
import type { Machine } from "../../../kernel/machine.ts";
import { MODULES, PCI_HOST } from "../../../kernel/tokens.ts";
import type { Process } from "../../../tools/runtime/process.ts";
import { HsaKmt } from "../../../tools/hsakmt/hsakmt.ts";
import {
  HSAKMT_STATUS, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC, HSA_SVM_ATTR_SET_FLAGS,
  HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_HOST_ACCESS,
} from "../../../tools/hsakmt/hsakmttypes.ts";
import { ASSERT_EQ, SKIP } from "../../../tools/testing/selftests/kselftest_harness.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import type { amdkfd } from "../../../drivers/gpu/drm/amd/amdkfd/kfd_module.ts";
import { kfd_process_count } from "../../../drivers/gpu/drm/amd/amdkfd/kfd_process.ts";
import type { AmdGpuDevice } from "../../../hw/amdgpu/device.ts";
import type { Hqd } from "../../../hw/amdgpu/cp.ts";
import { mmCP_HQD_PQ_BASE, mmCP_HQD_PQ_BASE_HI } from "../../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";

export const PAGE = 4096;

/** One XNACK-capable gfx90a; amdgpu and amdkfd load at boot as on the default machine. */
export const KFD_SELFTEST_MACHINE: MachineSpec = {
  name: "kfd", ram_size: 2 * GiB, gpus: [{ asic: "gfx90a", vram_size: 1 * GiB }], iommu: false, seed: 0,
};

export interface XnackVariant {
  xnack: 0 | 1;
}

export interface KfdSelf {
  proc: Process;
  kmt: HsaKmt;
  node: number;
  gpu_id: number;
  /** The test ended the process itself. */
  exited?: boolean;
}

/** What every fixture's setup does: spawn, hsaKmtOpenKFD, set the variant's XNACK mode. */
export async function kfd_open(self: KfdSelf, machine: Machine, xnack: 0 | 1 | null): Promise<void> {
  self.proc = await machine.spawn("kfdtest");
  self.kmt = HsaKmt.of(self.proc);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtOpenKFD());
  self.node = self.kmt.gpuNodes()[0]!;
  const props: { KFDGpuID?: number } = {};
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetNodeProperties(self.node, props));
  self.gpu_id = props.KFDGpuID!;
  if (xnack === null) return;
  const st = await self.kmt.hsaKmtSetXNACKMode(xnack);
  if (st === HSAKMT_STATUS.NOT_SUPPORTED) SKIP("XNACK mode cannot be changed on this GPU");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, st);
}

export async function kfd_close(self: KfdSelf): Promise<void> {
  if (self.exited) return;
  await self.kmt?.hsaKmtCloseKFD();
  await self.proc?.exit();
}

export async function anon(proc: Process, npages: number, prot = PROT_READ | PROT_WRITE): Promise<number> {
  const a = await proc.mmap(0, npages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) throw new Error(`mmap: ${a}`);
  return a;
}

/** kfdtest's RegisterSVMRange: prefetch and preferred at `loc`, HOST_ACCESS|COHERENT (+ extra), ACCESS for `node`. */
export function register_svm(self: KfdSelf, addr: number, size: number, loc = 0, extra_flags = 0): Promise<HSAKMT_STATUS> {
  return self.kmt.hsaKmtSVMSetAttr(addr, size, 4, [
    { type: HSA_SVM_ATTR_PREFETCH_LOC, value: loc },
    { type: HSA_SVM_ATTR_PREFERRED_LOC, value: loc },
    { type: HSA_SVM_ATTR_SET_FLAGS, value: HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT | extra_flags },
    { type: HSA_SVM_ATTR_ACCESS, value: self.node },
  ]);
}

export async function write32(proc: Process, addr: number, v: number): Promise<void> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  await proc.write(addr, b);
}

export async function read32(proc: Process, addr: number): Promise<number> {
  const b = await proc.read(addr, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

export function kfd_module(machine: Machine): amdkfd {
  return machine.symbol(MODULES).find_module("amdkfd")!.instance as amdkfd;
}

/** KFD processes alive (the kernel's table). */
export function kfd_processes(machine: Machine): number {
  return kfd_process_count(kfd_module(machine));
}

/** Hardware queue slots of the GPU that are active. */
export function active_hqds(machine: Machine): number {
  const gpu = machine.symbol(PCI_HOST).model(3 * 8) as AmdGpuDevice;
  return gpu.cp.hqds.filter((h) => h.active).length;
}

/** The hardware queue slot loaded with the ring at `ring` (it keeps its registers while evicted). */
export function hqd_of_ring(machine: Machine, ring: number): Hqd | undefined {
  const gpu = machine.symbol(PCI_HOST).model(3 * 8) as AmdGpuDevice;
  return gpu.cp.hqds.find((h) => h.read_reg(mmCP_HQD_PQ_BASE) * 256 + h.read_reg(mmCP_HQD_PQ_BASE_HI) * 2 ** 40 === ring);
}
