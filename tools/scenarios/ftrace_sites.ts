// kemu tooling: the function-graph tracer's patch sites in classes whose files other
// subsystems own. Kernel files open their own scopes (`using _ = ftrace(k, "name")`, see
// include/linux/ftrace.ts); classes still being written elsewhere are instrumented from here,
// the way ftrace patches every fentry site at boot without the functions knowing. Importing
// this module applies the patches once; they only cost anything while function_graph is on.

import type { Kernel } from "../../kernel/kernel.ts";
import { ftrace_call, ftrace_patch_methods } from "../../include/linux/ftrace.ts";
import { trace_sys_enter, trace_sys_exit } from "../../include/trace/events/syscalls.ts";
import { Syscalls } from "../../arch/x86/entry/syscall_64.ts";
import * as NR from "../../arch/x86/include/uapi/asm/unistd_64.ts";
import { hmm_dmirror } from "../../lib/test_hmm.ts";
import { AmdIommu } from "../../iommu/amd/iommu.ts";
import { AmdIommuV2 } from "../../iommu/amd/iommu_v2.ts";
import type { amd_iommu_fault } from "../../iommu/amd/amd_iommu_types.ts";
import { PPR_FAULT_EXEC, PPR_FAULT_READ, PPR_FAULT_WRITE } from "../../iommu/amd/amd_iommu_types.ts";
import { AmdIommuHw, type PageRequestMsg } from "../../hw/amd_iommu/iommu.ts";
import { AtsPriFunction } from "../../hw/amd_iommu/ats.ts";
import { SdmaEngine } from "../../hw/amdgpu/sdma.ts";
import { Hqd } from "../../hw/amdgpu/cp.ts";
import { trace_amd_iommu_complete_ppr, trace_amd_iommu_ppr_request } from "../../include/trace/events/amd_iommu.ts";
import { TRACE_EVENT } from "../../include/linux/tracepoint.ts";

type with_k = { k: Kernel };
const k_of = (self: never): Kernel => (self as with_k).k;

/** lib/test_hmm.c's functions, as the dmirror module's methods. */
ftrace_patch_methods(hmm_dmirror, "lib/test_hmm.ts", [
  "dmirror_fops_open", "dmirror_fops_release", "dmirror_fops_unlocked_ioctl", "dmirror_fops_mmap",
  "dmirror_interval_invalidate", "dmirror_do_update", "dmirror_range_fault", "dmirror_fault", "dmirror_do_fault",
  "dmirror_read", "dmirror_do_read", "dmirror_write", "dmirror_do_write",
  "dmirror_allocate_chunk", "dmirror_devmem_alloc_page", "dmirror_devmem_free", "dmirror_devmem_fault",
  "dmirror_devmem_fault_alloc_and_copy", "dmirror_migrate_to_device", "dmirror_migrate_alloc_and_copy",
  "dmirror_migrate_finalize_and_map", "dmirror_migrate_to_system", "dmirror_snapshot", "dmirror_range_snapshot",
  "dmirror_snapshot_invalidate", "dmirror_exclusive", "dmirror_atomic_map", "dmirror_device_evict_chunk",
  "dmirror_remove_free_pages", "dmirror_device_remove_chunks", "dmirror_device_init", "dmirror_device_remove",
  ["init", "hmm_dmirror_init"], ["exit", "hmm_dmirror_exit"],
], k_of);

/** __NR_xxx → "xxx". */
const syscall_names = new Map<number, string>(
  Object.entries(NR).map(([name, nr]) => [nr as number, name.replace(/^__NR_/, "")]),
);

type syscall_fn = (a: number[]) => Promise<number> | number;

/** A register as %lx prints it: negative values in two's complement. */
function reg_hex(x: number): string {
  return x < 0 ? (2n ** 64n + BigInt(x)).toString(16) : x.toString(16);
}

/**
 * Every entry of the system-call table becomes __x64_sys_<name> with the raw_syscalls events
 * around it (syscall_enter_from_user_mode / syscall_exit_to_user_mode), and do_syscall_64 a
 * traced function around it.
 */
function patch_syscalls(): void {
  const proto = Syscalls.prototype as unknown as { build_table(this: with_k): Map<number, syscall_fn>; __ftrace?: boolean };
  if (proto.__ftrace) return;
  proto.__ftrace = true;
  const build_table = proto.build_table;
  proto.build_table = function (this: with_k): Map<number, syscall_fn> {
    const table = build_table.call(this);
    const k = this.k;
    for (const [nr, fn] of table) {
      const func = `__x64_sys_${syscall_names.get(nr) ?? nr}`;
      table.set(nr, (a) => {
        if (trace_sys_enter.enabled) trace_sys_enter.trace(k, { id: nr, args: a.map(reg_hex).join(", ") });
        const exit = (ret: number): number => {
          trace_sys_exit.trace(k, { id: nr, ret });
          return ret;
        };
        const r = ftrace_call(k, func, () => fn(a));
        return r instanceof Promise ? r.then(exit) : exit(r);
      });
    }
    return table;
  };
  ftrace_patch_methods(Syscalls, "arch/x86/entry/syscall_64.ts", ["do_syscall_64"], k_of);
}

patch_syscalls();

// ---- probes: an event fired on entry to a method ---------------------------------------------------

/** Calls `hook(self, args)` before every call of `cls.prototype[method]` (a kprobe, in effect). */
function probe_method<A extends unknown[]>(cls: { prototype: object }, method: string, hook: (self: never, args: A) => void): void {
  const proto = cls.prototype as Record<string, unknown>;
  const orig = proto[method] as ((...args: A) => unknown) & { __probed?: boolean };
  if (typeof orig !== "function" || orig.__probed) return;
  const probed = function (this: never, ...args: A): unknown {
    hook(this, args);
    return orig.apply(this, args);
  };
  Object.defineProperty(probed, "__probed", { value: true });
  Object.defineProperty(probed, "name", { value: method });
  proto[method] = probed;
}

// ---- drivers/iommu/amd: the PPR path ------------------------------------------------------------

function ppr_access(flags: number): string {
  return `${flags & PPR_FAULT_READ ? "R" : "-"}${flags & PPR_FAULT_WRITE ? "W" : "-"}${flags & PPR_FAULT_EXEC ? "X" : "-"}`;
}

probe_method<[unknown, number, amd_iommu_fault]>(AmdIommuV2, "ppr_notifier", (self, [, , f]) => {
  trace_amd_iommu_ppr_request.trace(k_of(self), {
    sbdf: f.sbdf, pasid: f.pasid, address: f.address, tag: f.tag & 0x1ff, last: (f.tag & 0x200) !== 0, access: ppr_access(f.flags),
  });
});

probe_method<[unknown, number, number, number]>(AmdIommu, "amd_iommu_complete_ppr", (self, [, pasid, status, tag]) => {
  trace_amd_iommu_complete_ppr.trace(k_of(self), { pasid, tag, status });
});

// The graph entries wrap the probes, so the events show inside the functions.
ftrace_patch_methods(AmdIommu, "iommu/amd/iommu.ts", [
  "amd_iommu_int_thread", "iommu_poll_ppr_log", "iommu_handle_ppr_entry", "amd_iommu_complete_ppr",
  "iommu_queue_command", "iommu_completion_wait", "amd_iommu_flush_page", "amd_iommu_flush_tlb",
], k_of);

ftrace_patch_methods(AmdIommuV2, "iommu/amd/iommu_v2.ts", [
  "ppr_notifier", "do_fault", "handle_fault_error", "finish_pri_tag", "mn_invalidate_range", "mn_release",
  "amd_iommu_bind_pasid", "amd_iommu_unbind_pasid", "amd_iommu_init_device", "amd_iommu_free_device",
], k_of);

// ---- the IOMMU and ATS/PRI hardware models: device-side events on their own tracks -------------

/** A PRI Page Request Message reaching the IOMMU (the device could not translate). */
const trace_page_request = TRACE_EVENT<{ devid: number; pasid: number; va: number; prg: number; last: boolean; access: string }>(
  "amd_iommu_hw", "page_request",
  (a) => `devid=0x${a.devid.toString(16)} pasid=0x${a.pasid.toString(16)} va=0x${a.va.toString(16)} prg=${a.prg}${a.last ? " last" : ""} access=${a.access}`,
);

/** A PRG Response reaching the device. */
const trace_prg_response = TRACE_EVENT<{ pasid: number; prg: number; code: number }>(
  "amd_iommu_hw", "prg_response", (a) => `pasid=0x${a.pasid.toString(16)} prg=${a.prg} code=${a.code}`,
);

probe_method<[number, PageRequestMsg]>(AmdIommuHw, "page_request", (self, [devid, m]) => {
  trace_page_request.trace(k_of(self), {
    devid, pasid: m.pasid ?? 0, va: m.va, prg: m.prg_index, last: m.last,
    access: `${m.read ? "R" : "-"}${m.write ? "W" : "-"}${m.exec ? "X" : "-"}`,
  });
});

probe_method<[number | null, number, number]>(AtsPriFunction, "prg_response", (self, [pasid, prg, code]) => {
  const iommu = (self as unknown as { iommu: AmdIommuHw | null }).iommu;
  if (iommu) trace_prg_response.trace(k_of(iommu as never), { pasid: pasid ?? 0, prg, code });
});

// ---- the GPU's engines: their work as slices on their own tracks -----------------------------------

/**
 * One SDMA packet that took device time (copy, fill, write, fence), as a slice from when the
 * engine started it to when it finished — on the engine's track ("sdma0 (hw)").
 */
const trace_sdma_packet = TRACE_EVENT<{ engine: number; op: string; vmid: number; ns: number }>(
  "amdgpu_hw", "sdma_packet", (a) => `sdma${a.engine} op=${a.op} vmid=${a.vmid} busy=${a.ns}ns`,
);

/** One AQL kernel dispatch on a hardware queue, from its first wave to its completion. */
const trace_aql_dispatch = TRACE_EVENT<{ pipe: number; queue: number; grid: number; workgroup: number; kernel_object: number }>(
  "amdgpu_hw", "aql_dispatch",
  (a) => `hqd${a.pipe}.${a.queue} grid=${a.grid} workgroup=${a.workgroup} kernel_object=0x${a.kernel_object.toString(16)}`,
);

interface sdma_view { k: Kernel; instance: number }
interface sdma_pending { op: string; vmid: number; start: number; ns: number }

/** The packet each engine has in flight (its step timer fires when the packet is done). */
const sdma_inflight = new WeakMap<object, sdma_pending>();

for (const [method, op] of [["op_copy", "copy"], ["op_fill", "fill"], ["op_write", "write"]] as const) {
  const proto = SdmaEngine.prototype as unknown as Record<string, (...a: unknown[]) => { cost?: number }>;
  const orig = proto[method];
  if (typeof orig !== "function" || (orig as { __probed?: boolean }).__probed) continue;
  const probed = function (this: sdma_view, ...args: unknown[]): { cost?: number } {
    const r = orig.apply(this, args);
    if (trace_sdma_packet.enabled && r.cost && r.cost > 0) {
      sdma_inflight.set(this, { op, vmid: args[1] as number, start: this.k.ktime_get(), ns: r.cost });
    }
    return r;
  };
  Object.defineProperty(probed, "__probed", { value: true });
  proto[method] = probed;
}

probe_method<[]>(SdmaEngine, "step", (self) => {
  const s = self as unknown as sdma_view;
  const p = sdma_inflight.get(s);
  if (!p) return;
  sdma_inflight.delete(s);
  trace_sdma_packet.trace_span(s.k, { engine: s.instance, op: p.op, vmid: p.vmid, ns: p.ns }, p.start);
});

interface hqd_view { pipe: number; queue: number; cp: { k: Kernel } }
interface dispatch_view { grid: number; wg_size: number; kernel_object: number; next_wg: number }

/** When each queue's current dispatch started. */
const dispatch_start = new WeakMap<object, { start: number; d: dispatch_view }>();

probe_method<[dispatch_view]>(Hqd, "dispatch_step", (self, [d]) => {
  const h = self as unknown as hqd_view;
  if (d.next_wg === 0 && trace_aql_dispatch.enabled) dispatch_start.set(h, { start: h.cp.k.ktime_get(), d });
});

probe_method<[]>(Hqd, "packet_done", (self) => {
  const h = self as unknown as hqd_view;
  const s = dispatch_start.get(h);
  if (!s) return;
  dispatch_start.delete(h);
  trace_aql_dispatch.trace_span(h.cp.k, {
    pipe: h.pipe, queue: h.queue, grid: s.d.grid, workgroup: s.d.wg_size, kernel_object: s.d.kernel_object,
  }, s.start);
});
