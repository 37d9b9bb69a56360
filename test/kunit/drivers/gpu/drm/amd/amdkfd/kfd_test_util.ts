// Helpers for the amdkfd KUnit suites (not a suite): a machine with one GPU and amdkfd loaded,
// a user process that opened /dev/kfd through the thunk (its VM acquired), its kfd_process, and
// direct AMDKFD_IOC_SVM calls with gpu ids as the kernel sees them. The §6.2 invariant pass
// (amdkfd.svm_debug_checks) is on for every case: a violated invariant WARNs, and the machine's
// shutdown check fails the case.

import type { kunit } from "../../../../../../../lib/kunit/test.ts";
import { kunit_add_action } from "../../../../../../../lib/kunit/test.ts";
import { GiB, MiB, type MachineSpec } from "../../../../../../../kernel/machine_spec.ts";
import { MODULES } from "../../../../../../../kernel/tokens.ts";
import type { mm_struct } from "../../../../../../../include/linux/mm_types.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../../../../include/uapi/asm-generic/mman.ts";
import { interval_tree_iter_first, interval_tree_iter_next } from "../../../../../../../lib/interval_tree.ts";
import type { Process } from "../../../../../../../tools/runtime/process.ts";
import { HsaKmt } from "../../../../../../../tools/hsakmt/hsakmt.ts";
import { HSAKMT_STATUS } from "../../../../../../../tools/hsakmt/hsakmttypes.ts";
import * as K from "../../../../../../../include/uapi/linux/kfd_ioctl.ts";
import type { amdkfd } from "../../../../../../../drivers/gpu/drm/amd/amdkfd/kfd_module.ts";
import type { kfd_process } from "../../../../../../../drivers/gpu/drm/amd/amdkfd/kfd_priv.ts";
import { kfd_lookup_process_by_mm, kfd_process_count, kfd_unref_process } from "../../../../../../../drivers/gpu/drm/amd/amdkfd/kfd_process.ts";
import type { svm_range, svm_range_it_node } from "../../../../../../../drivers/gpu/drm/amd/amdkfd/kfd_svm.ts";

export const PAGE = 4096;

/** One gfx90a with 1 GiB of VRAM: new SVM ranges are cut at 32 MiB (svm_range_set_max_pages). */
export const KFD_MACHINE: MachineSpec = {
  name: "kfd", ram_size: 2 * GiB, gpus: [{ asic: "gfx90a", vram_size: 1 * GiB }], iommu: false, seed: 0,
};

export { MiB };

export interface kfd_env {
  test: kunit;
  proc: Process;
  kmt: HsaKmt;
  fd: number;
  kfd: amdkfd;
  /** The process as KFD sees it (a reference held until the case ends). */
  p: kfd_process;
  mm: mm_struct;
  node: number;
  gpu_id: number;
}

/** Waits from the case's kernel thread for a user-space call (it runs in the process's task). */
export function u<T>(test: kunit, x: Promise<T>): Promise<T> {
  return test.k.sched.wait_for(x, "user space");
}

export function kfd_module(test: kunit): amdkfd {
  const mod = test.machine.symbol(MODULES).find_module("amdkfd");
  if (!mod) throw new Error("amdkfd is not loaded");
  return mod.instance as amdkfd;
}

/** A process with /dev/kfd open and its GPU VM acquired, in the given XNACK mode. */
export async function kfd_env_create(test: kunit, xnack: 0 | 1): Promise<kfd_env> {
  const kfd = kfd_module(test);
  kfd.svm_debug_checks = true;
  const proc = await u(test, test.machine.spawn("kfd_kunit"));
  const kmt = HsaKmt.of(proc);
  if ((await u(test, kmt.hsaKmtOpenKFD())) !== HSAKMT_STATUS.SUCCESS) throw new Error("hsaKmtOpenKFD failed");
  if ((await u(test, kmt.hsaKmtSetXNACKMode(xnack))) !== HSAKMT_STATUS.SUCCESS) throw new Error("hsaKmtSetXNACKMode failed");
  const task = test.k.sched.all_tasks().find((t) => t.tgid === proc.pid)!;
  const mm = task.mm as mm_struct;
  const p = kfd_lookup_process_by_mm(kfd, mm);
  if (!p) throw new Error("no kfd_process for the opener");
  const node = kmt.gpuNodes()[0]!;
  const props: { KFDGpuID?: number } = {};
  kmt.hsaKmtGetNodeProperties(node, props);
  const env: kfd_env = { test, proc, kmt, fd: kmt.fd, kfd, p, mm, node, gpu_id: props.KFDGpuID! };
  kunit_add_action(test, async () => {
    kfd_unref_process(p);
    await u(test, proc.exit());
  });
  return env;
}

/** Everything the process left is gone once it exited (checked by suites at the end). */
export function kfd_no_processes(test: kunit): boolean {
  return kfd_process_count(kfd_module(test)) === 0;
}

/** mmap of `npages` anonymous read-write pages. */
export async function anon(e: kfd_env, npages: number): Promise<number> {
  const a = await u(e.test, e.proc.mmap(0, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
  if (a < 0) throw new Error(`mmap: ${a}`);
  return a;
}

/** AMDKFD_IOC_SVM SET_ATTR over [addr, addr + npages pages). */
export function svm_set(e: kfd_env, addr: number, npages: number, attrs: K.kfd_ioctl_svm_attribute_t[]): Promise<number> {
  const args = { start_addr: addr, size: npages * PAGE, op: K.KFD_IOCTL_SVM_OP_SET_ATTR, nattr: attrs.length, attrs };
  return u(e.test, e.proc.ioctl(e.fd, K.AMDKFD_IOC_SVM, args));
}

/** AMDKFD_IOC_SVM GET_ATTR; the results replace `attrs` in place. */
export function svm_get(e: kfd_env, addr: number, npages: number, attrs: K.kfd_ioctl_svm_attribute_t[]): Promise<number> {
  const args = { start_addr: addr, size: npages * PAGE, op: K.KFD_IOCTL_SVM_OP_GET_ATTR, nattr: attrs.length, attrs };
  return u(e.test, e.proc.ioctl(e.fd, K.AMDKFD_IOC_SVM, args));
}

/** The top-level ranges in tree order. */
export function tree_ranges(e: kfd_env): svm_range[] {
  const out: svm_range[] = [];
  const max = Number.MAX_SAFE_INTEGER;
  for (let n = interval_tree_iter_first(e.p.svms.objects, 0, max); n; n = interval_tree_iter_next(n, 0, max)) {
    out.push((n as svm_range_it_node).prange);
  }
  return out;
}

/** The tree as "[s-l]" spans in pages relative to `base` (an address), e.g. "[0-1][2-2][3-15]". */
export function tree_shape(e: kfd_env, base: number): string {
  const b = base / PAGE;
  return tree_ranges(e).filter((r) => r.last >= b).map((r) => `[${r.start - b}-${r.last - b}]`).join("");
}

/** The range holding page `pg` of `base`, if any. */
export function range_at(e: kfd_env, base: number, pg: number): svm_range | null {
  const page = base / PAGE + pg;
  return tree_ranges(e).find((r) => r.start <= page && r.last >= page) ?? null;
}

/** KFD's system-memory accounting (what XNACK-off ranges are charged to). */
export function system_mem_used(e: kfd_env): number {
  return e.kfd.kfd_mem_limit.system_mem_used;
}

export function attr(type: number, value: number): K.kfd_ioctl_svm_attribute_t {
  return { type, value };
}
