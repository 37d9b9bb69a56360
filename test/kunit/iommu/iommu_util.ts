// Helpers for the AMD IOMMUv2 KUnit suites: an APU machine with amd_iommu_v2 loaded, a user
// process whose address space is bound to the APU GPU's PASID, and the device side of the PRI
// protocol — the GPU's ATS/PRI function (translations that turn into page requests) and the
// IOMMU's upstream port (raw page requests with chosen PRG indices, as a device would send).

import { APU_MACHINE, GiB, type MachineSpec } from "../../../kernel/machine_spec.ts";
import { AMD_IOMMU, MODULES, PCI, PCI_HOST } from "../../../kernel/tokens.ts";
import type { Kernel } from "../../../kernel/kernel.ts";
import type { task_struct } from "../../../kernel/sched/core.ts";
import type { mm_struct } from "../../../include/linux/mm_types.ts";
import type { pci_dev } from "../../../include/linux/pci.ts";
import { AMD_IOMMU_DEVFN, type AmdIommuHw, type PageRequestMsg } from "../../../hw/amd_iommu/iommu.ts";
import type { AtsAccess, AtsPriFunction, PrgResponseRecord } from "../../../hw/amd_iommu/ats.ts";
import type { AmdGpuDevice } from "../../../hw/amdgpu/device.ts";
import type { AmdIommu } from "../../../iommu/amd/iommu.ts";
import { amd_iommu_v2_get, amd_iommu_v2_put, type AmdIommuV2 } from "../../../iommu/amd/iommu_v2.ts";
import { kunit_add_action, type kunit } from "../../../lib/kunit/test.ts";
import type { Process } from "../../../tools/runtime/process.ts";

/**
 * The APU machine with less RAM (each case boots one). The cases play the GPU driver's part
 * themselves (amd_iommu_init_device, binds, page requests), so amdgpu — and with it amdkfd,
 * which would claim the device's IOMMUv2 state — stays out.
 */
export const APU_TEST_MACHINE: MachineSpec = { ...APU_MACHINE, name: "apu-test", ram_size: 2 * GiB, cmdline: "modprobe.blacklist=amdgpu" };

/** The GPU's place on bus 0 (hw/pci.ts puts GPU 0 at device 3). */
export const GPU_DEVFN = 0x18;
export const TEST_PASID = 0x2a;
export const TEST_PASIDS = 65536;

export interface apu_env {
  test: kunit;
  k: Kernel;
  amd: AmdIommu;
  v2: AmdIommuV2;
  hw: AmdIommuHw;
  gpu: AmdGpuDevice;
  ats: AtsPriFunction;
  pdev: pci_dev;
  devid: number;
  proc: Process;
  task: task_struct;
  mm: mm_struct;
  pasid: number;
  /** Whether teardown still has to unbind / free the device. */
  bound: boolean;
  initialised: boolean;
}

export interface setup_opts {
  init?: boolean;
  bind?: boolean;
}

/**
 * Boots nothing (the suite's machine is the APU one): finds the GPU and the IOMMU, spawns a
 * process, and (by default) runs amd_iommu_init_device + amd_iommu_bind_pasid for it. The
 * teardown undoes whatever is still set up.
 */
export async function apu_setup(test: kunit, opts: setup_opts = {}): Promise<apu_env> {
  const k = test.k;
  const m = test.machine;
  const v2 = amd_iommu_v2_get(m.symbol(MODULES));
  if (!v2) throw new Error("amd_iommu_v2 is not loaded");
  const pdev = m.symbol(PCI).devices.find((d) => d.devfn === GPU_DEVFN)!;
  const host = m.symbol(PCI_HOST);
  const gpu = host.model(GPU_DEVFN) as AmdGpuDevice;
  const proc = await k.sched.wait_for(m.spawn("ppr_test"), "spawn");
  const task = k.sched.all_tasks().find((t) => t.tgid === proc.pid)!;
  const env: apu_env = {
    test, k, amd: m.symbol(AMD_IOMMU), v2, hw: host.model(AMD_IOMMU_DEVFN) as AmdIommuHw, gpu, ats: gpu.atc!.ats, pdev,
    devid: GPU_DEVFN, proc, task, mm: task.mm as mm_struct, pasid: TEST_PASID, bound: false, initialised: false,
  };
  kunit_add_action(test, () => apu_teardown(env));
  if (opts.init ?? true) {
    const ret = await v2.amd_iommu_init_device(pdev, TEST_PASIDS);
    if (ret) throw new Error(`amd_iommu_init_device: ${ret}`);
    env.initialised = true;
  }
  if (env.initialised && (opts.bind ?? true)) {
    const ret = await v2.amd_iommu_bind_pasid(pdev, TEST_PASID, task);
    if (ret) throw new Error(`amd_iommu_bind_pasid: ${ret}`);
    env.bound = true;
  }
  return env;
}

async function apu_teardown(env: apu_env): Promise<void> {
  if (env.bound) await env.v2.amd_iommu_unbind_pasid(env.pdev, env.pasid);
  if (env.initialised) await env.v2.amd_iommu_free_device(env.pdev);
  await env.k.sched.wait_for(env.proc.exit(), "exit");
  amd_iommu_v2_put(env.test.machine.symbol(MODULES));
}

/** Lets the PPR path run: the MSI, the IRQ thread, iommu_wq, COMPLETE_PPR and the response. */
export async function ppr_settle(env: apu_env, ms = 1): Promise<void> {
  await env.k.msleep(ms);
}

/** Sends one raw page request from the GPU through the IOMMU's upstream port. */
export function page_request(env: apu_env, va: number, prg_index: number, last: boolean, m: Partial<PageRequestMsg> = {}): boolean {
  return env.hw.page_request(env.devid, {
    pasid: env.pasid, va, read: true, write: false, exec: false, priv: false, prg_index, last, ...m,
  });
}

/** The responses the GPU received for a PRG index since `from` (an index into its log). */
export function responses(env: apu_env, prg_index: number, from = 0): PrgResponseRecord[] {
  return env.ats.response_log.slice(from).filter((r) => r.prg_index === prg_index);
}

/**
 * A device access the way the GPU's engines make it: translate, and while a page request is
 * pending let the PPR path run and retry. Returns the physical address or the fault reason.
 */
export async function device_access(env: apu_env, va: number, access: AtsAccess, max_tries = 8): Promise<number | string> {
  for (let i = 0; i < max_tries; i++) {
    const r = env.ats.translate(env.pasid, va, access);
    if (r.kind === "ok") return r.pa;
    if (r.kind === "fault") return r.reason;
    await ppr_settle(env);
  }
  return "still pending";
}
