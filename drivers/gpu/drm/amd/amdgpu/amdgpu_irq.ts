// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_irq.c and amdgpu_irq.h (Linux 6.8): the driver's
// interrupt plumbing. IP blocks register interrupt sources per (client id, source id); the MSI
// handler drains the main IH ring in hard-IRQ context and dispatches each vector to its source's
// process(), forwarding unhandled vectors to KFD; ring 1 and the software ring are drained by
// work items (process context, where sources may sleep — the retry-fault path). amdgpu_irq_get/
// put keep per-type enable counts and program the hardware through the source's set().

import type { amdgpu_device } from "./amdgpu.ts";
import {
  amdgpu_ih_process, amdgpu_ih_process_irq, amdgpu_ih_ring, amdgpu_ih_ring_write, amdgpu_ih_ts_after,
  type amdgpu_ih_funcs, type amdgpu_iv_entry,
} from "./amdgpu_ih.ts";
import { AMDGPU_IRQ_CLIENTID_MAX } from "../include/soc15_ih_clientid.ts";
import { EINVAL, EEXIST, ENOENT } from "../../../../../include/uapi/asm-generic/errno.ts";
import { IRQF_SHARED, type irqreturn_t, type IrqCore } from "../../../../../kernel/irq/manage.ts";
import { INIT_WORK, work_struct } from "../../../../../kernel/workqueue.ts";
import { pci_alloc_irq_vectors, pci_free_irq_vectors, pci_irq_vector } from "../../../../pci/msi/msi.ts";
import { PCI_IRQ_MSI } from "../../../../../include/linux/pci.ts";
import { amdgpu_amdkfd_interrupt } from "./amdgpu_amdkfd.ts";
import type { trace_event_call } from "../../../../../kernel/trace/trace.ts";
import { ftrace, ftrace_ret } from "../../../../../include/linux/ftrace.ts";

export const AMDGPU_IRQ_STATE_DISABLE = 0;
export const AMDGPU_IRQ_STATE_ENABLE = 1;
export const AMDGPU_MAX_IRQ_SRC_ID = 0x100;

export interface amdgpu_irq_src_funcs {
  set?(adev: amdgpu_device, source: amdgpu_irq_src, type: number, state: number): number;
  /** <0 error, 0 not handled (forwarded to KFD), >0 handled. May sleep only off the main ring. */
  process(adev: amdgpu_device, source: amdgpu_irq_src, entry: amdgpu_iv_entry): number | Promise<number>;
}

export class amdgpu_irq_src {
  num_types = 0;
  enabled_types: number[] = [];
  constructor(public funcs: amdgpu_irq_src_funcs | null = null) {}
}

interface amdgpu_irq_client {
  sources: Array<amdgpu_irq_src | null> | null;
}

interface amdgpu_iv_trace extends Record<string, unknown> {
  ih: number;
  client_id: number;
  src_id: number;
  ring_id: number;
  vmid: number;
  timestamp: number;
  pasid: number;
  src_data: number[];
}

export class amdgpu_irq {
  installed = false;
  msi_enabled = false;
  /** The Linux interrupt number of the MSI. */
  irq = 0;
  readonly client: amdgpu_irq_client[] = Array.from({ length: AMDGPU_IRQ_CLIENTID_MAX }, () => ({ sources: null }));
  readonly ih: amdgpu_ih_ring;
  readonly ih1: amdgpu_ih_ring;
  readonly ih_soft: amdgpu_ih_ring;
  readonly self_irq = new amdgpu_irq_src();
  ih_funcs: amdgpu_ih_funcs | null = null;
  readonly ih1_work = new work_struct();
  readonly ih_soft_work = new work_struct();
  /** kemu: no GFX 9.4.3 retry CAM. */
  retry_cam_enabled = false;
  trace_iv!: trace_event_call<amdgpu_iv_trace>;

  constructor(adev: amdgpu_device) {
    this.ih = new amdgpu_ih_ring(adev, "ih");
    this.ih1 = new amdgpu_ih_ring(adev, "ih1");
    this.ih_soft = new amdgpu_ih_ring(adev, "ih_soft");
  }
}

/** amdgpu_irq_handler(): the MSI handler — drains the main ring in hard-IRQ context. */
function amdgpu_irq_handler(_irq: number, arg: unknown): irqreturn_t {
  const adev = arg as amdgpu_device;
  using _ = ftrace(adev.k, "amdgpu_irq_handler");
  return amdgpu_ih_process_irq(adev, adev.irq.ih);
}

/** amdgpu_irq_handle_ih1(): ring 1 (rerouted retry faults) in process context. */
async function amdgpu_irq_handle_ih1(adev: amdgpu_device): Promise<void> {
  using _ = ftrace(adev.k, "amdgpu_irq_handle_ih1");
  await amdgpu_ih_process(adev, adev.irq.ih1);
}

/** amdgpu_irq_handle_ih_soft(): the software ring in process context. */
async function amdgpu_irq_handle_ih_soft(adev: amdgpu_device): Promise<void> {
  using _ = ftrace(adev.k, "amdgpu_irq_handle_ih_soft");
  await amdgpu_ih_process(adev, adev.irq.ih_soft);
}

/** amdgpu_irq_init(): MSI, the handler, the ring works and the amdgpu_iv tracepoint. */
export async function amdgpu_irq_init(adev: amdgpu_device, irqcore: IrqCore): Promise<number> {
  const irq = adev.irq;
  irq.trace_iv = adev.trace.define_trace_event<amdgpu_iv_trace>("amdgpu", "amdgpu_iv", (a) =>
    `ih:${a.ih} client_id:${a.client_id} src_id:${a.src_id} ring:${a.ring_id} vmid:${a.vmid} timestamp: ${a.timestamp} pasid:${a.pasid} ` +
    `src_data: ${a.src_data.map((d) => d.toString(16).padStart(8, "0")).join(" ")}`);
  const nvec = pci_alloc_irq_vectors(adev.pdev, 1, 1, PCI_IRQ_MSI);
  if (nvec < 0) return nvec;
  irq.msi_enabled = true;
  adev.k.dev_dbg(adev, "using MSI/MSI-X.");
  INIT_WORK(irq.ih1_work, () => amdgpu_irq_handle_ih1(adev), "amdgpu_irq_handle_ih1");
  INIT_WORK(irq.ih_soft_work, () => amdgpu_irq_handle_ih_soft(adev), "amdgpu_irq_handle_ih_soft");
  const n = pci_irq_vector(adev.pdev, 0);
  if (n < 0) {
    pci_free_irq_vectors(adev.pdev);
    return n;
  }
  const r = irqcore.request_irq(n, amdgpu_irq_handler, IRQF_SHARED, "amdgpu", adev);
  if (r) {
    pci_free_irq_vectors(adev.pdev);
    return r;
  }
  irq.irq = n;
  irq.installed = true;
  adev.k.pr_debug(`amdgpu: irq ${n}`);
  return 0;
}

/** amdgpu_irq_fini_hw(): the handler and MSI go; pending ring works are flushed. */
export async function amdgpu_irq_fini_hw(adev: amdgpu_device, irqcore: IrqCore): Promise<void> {
  const irq = adev.irq;
  if (irq.installed) {
    await irqcore.free_irq(irq.irq, adev);
    irq.installed = false;
    pci_free_irq_vectors(adev.pdev);
  }
  await adev.wq.cancel_work_sync(irq.ih1_work);
  await adev.wq.cancel_work_sync(irq.ih_soft_work);
}

/** amdgpu_irq_add_id(): registers `source` for (client_id, src_id). */
export function amdgpu_irq_add_id(adev: amdgpu_device, client_id: number, src_id: number, source: amdgpu_irq_src): number {
  if (client_id >= AMDGPU_IRQ_CLIENTID_MAX || src_id >= AMDGPU_MAX_IRQ_SRC_ID || !source.funcs) return -EINVAL;
  const client = adev.irq.client[client_id]!;
  if (!client.sources) client.sources = new Array<amdgpu_irq_src | null>(AMDGPU_MAX_IRQ_SRC_ID).fill(null);
  if (client.sources[src_id]) return -EEXIST;
  if (source.num_types && source.enabled_types.length === 0) source.enabled_types = new Array<number>(source.num_types).fill(0);
  client.sources[src_id] = source;
  return 0;
}

/**
 * amdgpu_irq_dispatch(): decodes the vector at rptr, traces it, hands it to its source and, if
 * nothing handled it, to KFD. Returns the handled flag, or a promise of it when the source
 * sleeps (allowed only on rings processed in process context).
 */
export function amdgpu_irq_dispatch(adev: amdgpu_device, ih: amdgpu_ih_ring): number | Promise<number> {
  using scope = ftrace(adev.k, "amdgpu_irq_dispatch");
  const entry = ih.iv;
  entry.ih = ih;
  adev.irq.ih_funcs!.decode_iv(adev, ih, entry);
  const irq = adev.irq;
  if (irq.trace_iv.enabled) {
    irq.trace_iv.trace({
      ih: ih === irq.ih ? 0 : ih === irq.ih1 ? 1 : 3, client_id: entry.client_id, src_id: entry.src_id, ring_id: entry.ring_id,
      vmid: entry.vmid, timestamp: entry.timestamp, pasid: entry.pasid, src_data: [...entry.src_data],
    });
  }
  const client = irq.client[entry.client_id];
  const src = client?.sources?.[entry.src_id] ?? null;
  if (!client?.sources) {
    adev.k.pr_debug(`[drm] Unregistered interrupt client_id: ${entry.client_id} src_id: ${entry.src_id}`);
    return amdgpu_irq_dispatch_finish(adev, ih, entry, 0);
  }
  if (!src) {
    adev.k.pr_debug(`[drm] Unregistered interrupt src_id: ${entry.src_id} of client_id:${entry.client_id}`);
    return amdgpu_irq_dispatch_finish(adev, ih, entry, 0);
  }
  const r = src.funcs!.process(adev, src, entry);
  return ftrace_ret(scope, r instanceof Promise ? r.then((v) => amdgpu_irq_dispatch_finish(adev, ih, entry, v)) : amdgpu_irq_dispatch_finish(adev, ih, entry, r));
}

/**
 * The tail of amdgpu_irq_dispatch(): report errors, forward unhandled vectors to KFD, advance
 * the ring's processed timestamp. Module-level rather than a per-vector closure: it runs for
 * every IV, and a retry-fault storm raises tens of thousands.
 */
function amdgpu_irq_dispatch_finish(adev: amdgpu_device, ih: amdgpu_ih_ring, entry: amdgpu_iv_entry, r: number): number {
  if (r < 0) adev.k.pr_err(`[drm] *ERROR* error processing interrupt (${r})`);
  if (r <= 0) amdgpu_amdkfd_interrupt(adev, entry.iv_entry);
  if (amdgpu_ih_ts_after(ih.processed_timestamp, entry.timestamp)) ih.processed_timestamp = entry.timestamp;
  return r > 0 ? 1 : 0;
}

/**
 * amdgpu_irq_delegate(): copies the vector into the software ring and schedules its work, so
 * a source that must sleep can handle it in process context.
 */
export function amdgpu_irq_delegate(adev: amdgpu_device, entry: amdgpu_iv_entry, num_dw: number): void {
  using _ = ftrace(adev.k, "amdgpu_irq_delegate");
  amdgpu_ih_ring_write(adev, adev.irq.ih_soft, entry.iv_entry, num_dw);
  adev.wq.schedule_work(adev.irq.ih_soft_work);
}

/** amdgpu_irq_update(): programs the hardware for the source's current enable count. */
export function amdgpu_irq_update(adev: amdgpu_device, src: amdgpu_irq_src, type: number): number {
  const state = src.enabled_types[type]! > 0 ? AMDGPU_IRQ_STATE_ENABLE : AMDGPU_IRQ_STATE_DISABLE;
  return src.funcs?.set?.(adev, src, type, state) ?? 0;
}

/** amdgpu_irq_get(): one more user of interrupt `type`; the first enables it. */
export function amdgpu_irq_get(adev: amdgpu_device, src: amdgpu_irq_src, type: number): number {
  if (!adev.irq.installed) return -ENOENT;
  if (type >= src.num_types) return -EINVAL;
  if (!src.enabled_types.length || !src.funcs?.set) return -EINVAL;
  if (++src.enabled_types[type]! === 1) return amdgpu_irq_update(adev, src, type);
  return 0;
}

/** amdgpu_irq_put(): one user fewer; the last disables it. */
export function amdgpu_irq_put(adev: amdgpu_device, src: amdgpu_irq_src, type: number): number {
  if (!adev.irq.installed) return -ENOENT;
  if (type >= src.num_types) return -EINVAL;
  if (!src.enabled_types.length || !src.funcs?.set) return -EINVAL;
  if (adev.k.WARN_ON(!amdgpu_irq_enabled(adev, src, type))) return -EINVAL;
  if (--src.enabled_types[type]! === 0) return amdgpu_irq_update(adev, src, type);
  return 0;
}

export function amdgpu_irq_enabled(adev: amdgpu_device, src: amdgpu_irq_src, type: number): boolean {
  if (!adev.irq.installed || type >= src.num_types || !src.enabled_types.length) return false;
  return src.enabled_types[type]! > 0;
}

/** amdgpu_irq_gpu_reset_resume_helper(): re-programs every source after a reset. */
export function amdgpu_irq_gpu_reset_resume_helper(adev: amdgpu_device): void {
  for (const c of adev.irq.client) {
    for (const src of c.sources ?? []) {
      if (!src?.funcs?.set) continue;
      for (let t = 0; t < src.num_types; t++) amdgpu_irq_update(adev, src, t);
    }
  }
}
