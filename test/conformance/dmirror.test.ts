// The HMM driver contract (test/conformance/hmm-driver.ts) run against lib/test_hmm.ts, the
// dmirror driver: once with device-private memory (/dev/hmm_dmirror0) and once with
// device-coherent memory (/dev/hmm_dmirror2, the module loaded with reserved-memory addresses).
// The adapter is all a driver has to provide: how to load it and how a process asks its device
// to migrate, read and write — here, the HMM_DMIRROR_* ioctls.

import { describe, it } from "vitest";
import { GiB, MINIMAL_MACHINE, type MachineSpec } from "../../kernel/machine_spec.ts";
import type { Machine } from "../../kernel/machine.ts";
import type { ModuleParams } from "../../kernel/module/main.ts";
import type { Process } from "../../tools/runtime/process.ts";
import { O_RDWR } from "../../include/uapi/asm-generic/fcntl.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../include/uapi/asm-generic/mman.ts";
import { PAGE_SIZE } from "../../include/linux/mm.ts";
import {
  HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, type hmm_dmirror_cmd_t,
} from "../../include/uapi/linux/test_hmm_uapi.ts";
import { DEVMEM_CHUNK_SIZE } from "../../lib/test_hmm.ts";
import { hmm_driver_contract, type HmmDeviceContext, type HmmDriverAdapter } from "./hmm-driver.ts";

const MACHINE: MachineSpec = { ...MINIMAL_MACHINE, name: "dmirror", ram_size: 2 * GiB };
/** Reserved memory for the coherent devices: above RAM, as test_hmm.sh's spm_addr_dev0/1. */
const SPM: ModuleParams = { spm_addr_dev0: 8 * GiB, spm_addr_dev1: 8 * GiB + DEVMEM_CHUNK_SIZE };

/** One open /dev/hmm_dmirrorN: each request goes through the command block and a user buffer. */
class DmirrorContext implements HmmDeviceContext {
  constructor(
    private readonly p: Process,
    private readonly fd: number,
  ) {}

  private async cmd(request: number, addr: number, npages: number, ptr: number): Promise<number> {
    const c: hmm_dmirror_cmd_t = { addr, ptr, npages, cpages: 0, faults: 0 };
    return this.p.ioctl(this.fd, request, c);
  }

  /** A user buffer of `bytes`, freed after `fn`. */
  private async with_buffer<T>(bytes: number, fn: (ptr: number) => Promise<T>): Promise<T> {
    const len = Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
    const ptr = await this.p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      return await fn(ptr);
    } finally {
      await this.p.munmap(ptr, len);
    }
  }

  migrate_to_device(addr: number, npages: number): Promise<number> {
    return this.with_buffer(npages * PAGE_SIZE, (ptr) => this.cmd(HMM_DMIRROR_MIGRATE_TO_DEV, addr, npages, ptr));
  }

  migrate_to_system(addr: number, npages: number): Promise<number> {
    return this.cmd(HMM_DMIRROR_MIGRATE_TO_SYS, addr, npages, 0);
  }

  device_read(addr: number, npages: number): Promise<Uint8Array | number> {
    return this.with_buffer(npages * PAGE_SIZE, async (ptr) => {
      const ret = await this.cmd(HMM_DMIRROR_READ, addr, npages, ptr);
      return ret ? ret : this.p.read(ptr, npages * PAGE_SIZE);
    });
  }

  device_write(addr: number, data: Uint8Array): Promise<number> {
    return this.with_buffer(data.length, async (ptr) => {
      await this.p.write(ptr, data);
      return this.cmd(HMM_DMIRROR_WRITE, addr, data.length / PAGE_SIZE, ptr);
    });
  }

  async close(): Promise<void> {
    await this.p.close(this.fd);
  }
}

function dmirror_adapter(name: string, unit: number, params: ModuleParams, coherent: boolean): HmmDriverAdapter {
  return {
    name,
    machine: MACHINE,
    coherent,
    load: (m: Machine) => m.insmod("test_hmm", params),
    unload: (m: Machine) => m.rmmod("test_hmm"),
    async open(p: Process) {
      const fd = await p.open(`/dev/hmm_dmirror${unit}`, O_RDWR);
      if (fd < 0) throw new Error(`open /dev/hmm_dmirror${unit}: ${fd}`);
      return new DmirrorContext(p, fd);
    },
  };
}

for (const drv of [
  dmirror_adapter("dmirror_private", 0, {}, false),
  dmirror_adapter("dmirror_coherent", 2, SPM, true),
]) {
  describe(`hmm driver contract: ${drv.name}`, () => {
    for (const c of hmm_driver_contract(drv)) it(c.name, () => c.run(), 60_000);
  });
}
