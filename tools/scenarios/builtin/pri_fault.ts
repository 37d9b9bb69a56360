// Built-in scenario: a GPU access to a page the CPU never touched, on the IOMMUv2 APU — the
// device's PRI page request, the PPR log and interrupt, ppr_notifier, do_fault on iommu_wq and
// the PRG response (../shared/reference/iommu-and-selftests.md §1.6).
//
// kemu's amdkfd follows 6.8, which no longer drives IOMMUv2 APUs; the GPU side here is the
// apu_kfd_test stand-in of the IOMMU selftests (test/selftests/iommu/apu_kfd_test.ts), on top
// of the real kfd_iommu.c port and iommu/amd.

import { defineScenario } from "../scenario.ts";
import { APU_MACHINE, GiB } from "../../../kernel/machine_spec.ts";
import type { Process } from "../../runtime/process.ts";
import { O_RDWR } from "../../../include/uapi/asm-generic/fcntl.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import {
  assemble, aql_kernel_dispatch, global_load_dword, global_load_dwordx2, global_store_dword, s_addi, s_add, s_cbranch_lt,
  s_endpgm, s_mov_b64, s_muli,
} from "../../../hw/amdgpu/isa.ts";
import {
  APU_IOC_BIND, APU_IOC_CREATE_QUEUE, APU_IOC_SUBMIT, APU_IOC_WAIT, apu_kfd_test_module,
} from "../../../test/selftests/iommu/apu_kfd_test.ts";

const PAGE = 4096;
const RING_SIZE = 4096;
const WORDS = PAGE / 4;

function le(bytes: number, vals: readonly number[]): Uint8Array {
  const b = new Uint8Array(vals.length * bytes);
  const dv = new DataView(b.buffer);
  vals.forEach((v, i) => {
    dv.setUint32(i * bytes, v % 2 ** 32, true);
    if (bytes === 8) dv.setUint32(i * 8 + 4, Math.floor(v / 2 ** 32), true);
  });
  return b;
}

/** kernarg {src, dst, count}: dst[i] = src[i] + 1, one wave. */
function add_one_kernel(): Uint8Array {
  return assemble([
    global_load_dwordx2(4, 1, 0), global_load_dwordx2(5, 1, 8), global_load_dword(6, 1, 16), s_mov_b64(7, 0),
    s_muli(8, 7, 4), s_add(9, 4, 8), global_load_dword(10, 9, 0), s_addi(10, 10, 1), s_add(11, 5, 8),
    global_store_dword(11, 10, 0), s_addi(7, 7, 1), s_cbranch_lt(7, 6, 4 - 12), s_endpgm(),
  ]);
}

async function map(p: Process, bytes: number, prot: number): Promise<number> {
  const a = await p.mmap(0, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) throw new Error(`mmap: ${a}`);
  return a;
}

export default defineScenario({
  name: "pri-fault",
  title: "GPU page fault through the IOMMU: PRI page request → PPR log → do_fault → PRG response",
  reference: "iommu-and-selftests.md §1.6",
  description:
    "An APU process binds its address space to the GPU's PASID and dispatches a kernel that " +
    "reads one page the CPU filled and writes one page the CPU never touched. The GPU's ATS " +
    "translation of the untouched page fails (not present in the process's page tables), so " +
    "the device sends a PRI Page Request; the IOMMU appends it to the PPR log and raises its " +
    "interrupt. The IRQ thread (amd_iommu_int_thread → iommu_poll_ppr_log → " +
    "iommu_handle_ppr_entry) hands the entry down the atomic notifier chain to ppr_notifier, " +
    "which counts it in its PRI group and queues do_fault on iommu_wq. The worker takes " +
    "mmap_lock, finds the VMA and calls handle_mm_fault with FAULT_FLAG_REMOTE, then " +
    "finish_pri_tag sends COMPLETE_PPR (SUCCESS) for the group; the device retries the " +
    "translation, which now hits, and the wave continues.",
  machine: { ...APU_MACHINE, name: "apu", ram_size: 2 * GiB, modules: ["amd_iommu_v2", apu_kfd_test_module] },
  expected_chain: [
    "__x64_sys_ioctl", "amd_iommu_int_thread", "iommu_poll_ppr_log", "iommu_handle_ppr_entry", "ppr_notifier",
    "do_fault", "handle_mm_fault", "do_anonymous_page", "finish_pri_tag", "amd_iommu_complete_ppr",
  ],
  async run(ctx) {
    const p = await ctx.spawn("iommu_apu");
    const fd = await p.open("/dev/kemu_apu", O_RDWR);
    if (fd < 0) throw new Error(`open /dev/kemu_apu: ${fd}`);
    const bind = { pasid: 0, vmid: 0 };
    if (await p.ioctl(fd, APU_IOC_BIND, bind)) throw new Error("APU_IOC_BIND failed");
    const ring = await map(p, RING_SIZE, PROT_READ | PROT_WRITE);
    const code = await map(p, PAGE, PROT_READ | PROT_WRITE);
    const kernarg = await map(p, PAGE, PROT_READ | PROT_WRITE);
    const signal = await map(p, PAGE, PROT_READ | PROT_WRITE);
    await p.write(code, add_one_kernel());
    await p.mprotect(code, PAGE, PROT_READ | PROT_EXEC);
    if (await p.ioctl(fd, APU_IOC_CREATE_QUEUE, { ring_address: ring, ring_size: RING_SIZE, pad: 0, rptr_report_address: signal + 256 })) {
      throw new Error("APU_IOC_CREATE_QUEUE failed");
    }
    const src = await map(p, PAGE, PROT_READ | PROT_WRITE);
    const dst = await map(p, PAGE, PROT_READ | PROT_WRITE);
    await p.write(src, le(4, Array.from({ length: WORDS }, (_, i) => i * 3)));
    await p.write(kernarg, new Uint8Array([...le(8, [src, dst]), ...le(4, [WORDS])]));
    await p.write(signal + 8, le(8, [1]));
    await p.write(ring, aql_kernel_dispatch({
      workgroup_size_x: 1, grid_size_x: 1, kernel_object: code, kernarg_address: kernarg, completion_signal: signal,
    }));
    const w = { wptr: 1, timeout_ms: 1000, status: 0 };
    const ret = await ctx.study("dispatch writing a page the CPU never touched", async () => {
      if (await p.ioctl(fd, APU_IOC_SUBMIT, { wptr: 1 })) throw new Error("APU_IOC_SUBMIT failed");
      return p.ioctl(fd, APU_IOC_WAIT, w);
    });
    ctx.check(ret === 0 && w.status === 0, `the dispatch completed (ret ${ret}, status ${w.status})`);
    const bytes = await p.read(dst, PAGE);
    const out = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    ctx.check(Array.from({ length: WORDS }, (_, i) => out.getUint32(i * 4, true) === i * 3 + 1).every(Boolean), "dst[i] = src[i] + 1");
    await p.close(fd);
    await p.exit();
    return { status: w.status };
  },
});
