// The HMM driver contract (test/conformance/hmm-driver.ts) run against amdkfd's SVM: migration
// is AMDKFD_IOC_SVM PREFETCH_LOC (to the GPU, back to system memory), and the device reads and
// writes through a shader (copyBufferIsa) between the range and a bounce buffer, so every access
// goes through the GPU's page tables and retry faults like an application's would.

import { describe, it } from "vitest";
import { GiB, type MachineSpec } from "../../kernel/machine_spec.ts";
import type { Machine } from "../../kernel/machine.ts";
import type { Process } from "../../tools/runtime/process.ts";
import { PAGE_SIZE } from "../../include/linux/mm.ts";
import { EFAULT, EIO } from "../../include/uapi/asm-generic/errno.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../include/uapi/asm-generic/mman.ts";
import { HsaKmt } from "../../tools/hsakmt/hsakmt.ts";
import { GpuDispatcher, copyBufferIsa } from "../../tools/hsakmt/dispatch.ts";
import {
  HSAKMT_STATUS, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC,
} from "../../tools/hsakmt/hsakmttypes.ts";
import { hmm_driver_contract, type HmmDeviceContext, type HmmDriverAdapter } from "./hmm-driver.ts";

const MACHINE: MachineSpec = { name: "amdkfd-contract", ram_size: 2 * GiB, gpus: [{ asic: "gfx90a", vram_size: 1 * GiB }], iommu: false, seed: 0 };

class KfdContext implements HmmDeviceContext {
  constructor(
    private readonly p: Process,
    private readonly kmt: HsaKmt,
    private readonly node: number,
    private readonly gpu: GpuDispatcher,
  ) {}

  private async attrs(addr: number, npages: number, attrs: Array<{ type: number; value: number }>): Promise<number> {
    const st = await this.kmt.hsaKmtSVMSetAttr(addr, npages * PAGE_SIZE, attrs.length, attrs);
    return st === HSAKMT_STATUS.SUCCESS ? 0 : -EIO;
  }

  migrate_to_device(addr: number, npages: number): Promise<number> {
    return this.attrs(addr, npages, [{ type: HSA_SVM_ATTR_ACCESS, value: this.node }, { type: HSA_SVM_ATTR_PREFETCH_LOC, value: this.node }]);
  }

  migrate_to_system(addr: number, npages: number): Promise<number> {
    return this.attrs(addr, npages, [{ type: HSA_SVM_ATTR_PREFETCH_LOC, value: 0 }]);
  }

  /** The shader copies `npages` from `src` to `dst`; a GPU fault is -EFAULT. */
  private async copy(dst: number, src: number, npages: number): Promise<number> {
    const r = await this.gpu.run(copyBufferIsa(), { kernargs: [dst, src, npages * PAGE_SIZE], grid: 1 });
    if (r.fault) return -EFAULT;
    return r.completed ? 0 : -EIO;
  }

  /** A system-memory bounce buffer the GPU may access, freed after `fn`. */
  private async with_bounce<T>(npages: number, fn: (b: number) => Promise<T>): Promise<T> {
    const b = await this.p.mmap(0, npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      await this.attrs(b, npages, [{ type: HSA_SVM_ATTR_ACCESS, value: this.node }, { type: HSA_SVM_ATTR_PREFERRED_LOC, value: 0 }]);
      return await fn(b);
    } finally {
      await this.p.munmap(b, npages * PAGE_SIZE);
    }
  }

  device_read(addr: number, npages: number): Promise<Uint8Array | number> {
    return this.with_bounce(npages, async (b) => {
      const a = await this.attrs(addr, npages, [{ type: HSA_SVM_ATTR_ACCESS, value: this.node }]);
      if (a) return a;
      const r = await this.copy(b, addr, npages);
      return r ? r : this.p.read(b, npages * PAGE_SIZE);
    });
  }

  device_write(addr: number, data: Uint8Array): Promise<number> {
    const npages = data.length / PAGE_SIZE;
    return this.with_bounce(npages, async (b) => {
      await this.p.write(b, data);
      const a = await this.attrs(addr, npages, [{ type: HSA_SVM_ATTR_ACCESS, value: this.node }]);
      return a ? a : this.copy(addr, b, npages);
    });
  }

  async close(): Promise<void> {
    await this.gpu.destroy();
    await this.kmt.hsaKmtCloseKFD();
  }
}

const adapter: HmmDriverAdapter = {
  name: "amdkfd",
  machine: MACHINE,
  // amdkfd loads at boot on a machine with GPUs.
  load: async () => 0,
  unload: (m: Machine) => m.rmmod("amdkfd"),
  async open(p: Process) {
    const kmt = HsaKmt.of(p);
    if ((await kmt.hsaKmtOpenKFD()) !== HSAKMT_STATUS.SUCCESS) throw new Error("hsaKmtOpenKFD failed");
    const node = kmt.gpuNodes()[0]!;
    const gpu = await GpuDispatcher.create(kmt, node);
    if (typeof gpu === "number") throw new Error(`GpuDispatcher.create: ${gpu}`);
    return new KfdContext(p, kmt, node, gpu);
  },
};

/**
 * Left out, each for an amdkfd behaviour the contract does not allow for:
 * - unload_leaves_nothing: amdkfd keeps its VRAM pagemap until the device goes; unloading it
 *   with pages still in VRAM would wait in memunmap_pages for pages only the process's exit
 *   frees (the kernel builds KFD into amdgpu.ko, which a KFD process pins).
 * - invalidation_on_munmap: the read of the PROT_NONE hole is a GPU VM fault, which evicts the
 *   process's queues for good (the runtime then ends the process), so the case's later device
 *   read cannot run. Its first half (the unmapped hole faults) passes.
 * - invalidation_on_fork: after fork, pages already in VRAM are device-private entries shared
 *   copy-on-write (fork made them read-only in both processes). The kernel's hmm_vma_handle_pte
 *   reports a device-private entry of the caller's own pagemap as it is, without faulting even
 *   when write access is requested, and svm_range_map_to_gpu takes the GPU's write permission
 *   from the VMA and range flags, not from the hmm pfn: so the parent's GPU write lands in the
 *   shared device page and the child sees it. kemu does what the kernel does (checked against
 *   torvalds/linux mm/hmm.c and kfd_svm.c); the contract's expectation does not hold for amdkfd.
 */
const SKIPPED = new Set(["amdkfd.unload_leaves_nothing", "amdkfd.invalidation_on_munmap", "amdkfd.invalidation_on_fork"]);

describe("hmm driver contract: amdkfd", () => {
  for (const c of hmm_driver_contract(adapter)) {
    if (SKIPPED.has(c.name)) it.skip(c.name, () => c.run());
    else it(c.name, () => c.run(), 60_000);
  }
});
