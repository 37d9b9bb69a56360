// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_job.c (Linux 6.8), with the parts of the GPU
// scheduler (drm/scheduler) a job needs: allocation with IBs, submission returning a fence, and
// the timeout handler. kemu runs a submission in the submitting context: it waits until the ring
// has fewer than amdgpu_sched_hw_submission jobs in flight (the scheduler's credit limit), takes
// the ring's lock, writes the job (amdgpu_ib_schedule) and returns a reference to its hardware
// fence as the "finished" fence. A job whose fence has not signalled when the ring's timeout
// runs out is reported and the GPU is recovered (amdgpu_job_timedout → amdgpu_device_gpu_recover).

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import { amdgpu_sched_hw_submission } from "./amdgpu_ring.ts";
import { amdgpu_ib, amdgpu_ib_free, amdgpu_ib_get, amdgpu_ib_schedule, amdgpu_ib_pool_type } from "./amdgpu_ib.ts";
import type { amdgpu_fence } from "./amdgpu_fence.ts";
import { amdgpu_fence_process } from "./amdgpu_fence.ts";
import {
  dma_fence_add_callback, dma_fence_cb, dma_fence_get, dma_fence_is_signaled, dma_fence_put, dma_fence_wait,
  type dma_fence,
} from "../../../../dma-buf/dma-fence.ts";
import { mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { delayed_work, INIT_DELAYED_WORK } from "../../../../../kernel/workqueue.ts";
import { msecs_to_jiffies } from "../../../../../kernel/time/timekeeping.ts";
import { EINVAL, ENODEV } from "../../../../../include/uapi/asm-generic/errno.ts";
import type { amdgpu_vm } from "./amdgpu_vm.ts";
import { amdgpu_device_gpu_recover } from "./amdgpu_device.ts";

/** Owners of kernel jobs (AMDGPU_FENCE_OWNER_*). */
export const AMDGPU_FENCE_OWNER_UNDEFINED = "undefined";
export const AMDGPU_FENCE_OWNER_KFD = "kfd";

export class amdgpu_job {
  readonly ibs: amdgpu_ib[] = [];
  /** The ring the job runs on (its scheduler entity's ring in the kernel). */
  ring: amdgpu_ring | null = null;
  vm: amdgpu_vm | null = null;
  vmid = 0;
  vm_pd_addr = 0;
  vm_needs_flush = false;
  hw_fence: amdgpu_fence | null = null;
  owner = AMDGPU_FENCE_OWNER_UNDEFINED;
  /** Fences the job must wait for before it runs (drm_sched_job_add_dependency). */
  readonly dependencies: dma_fence[] = [];

  constructor(readonly adev: amdgpu_device) {}
}

/** amdgpu_job_alloc(): a job with `num_ibs` empty IBs. */
export function amdgpu_job_alloc(adev: amdgpu_device, vm: amdgpu_vm | null, ring: amdgpu_ring | null, owner: string,
  num_ibs: number): amdgpu_job {
  const job = new amdgpu_job(adev);
  for (let i = 0; i < num_ibs; i++) job.ibs.push(new amdgpu_ib());
  job.vm = vm;
  job.ring = ring;
  job.owner = owner;
  return job;
}

/** amdgpu_job_alloc_with_ib(): a job with one IB of `size` bytes from `pool`. */
export async function amdgpu_job_alloc_with_ib(adev: amdgpu_device, ring: amdgpu_ring | null, owner: string, size: number,
  pool: amdgpu_ib_pool_type): Promise<amdgpu_job | number> {
  const job = amdgpu_job_alloc(adev, null, ring, owner, 1);
  const r = await amdgpu_ib_get(adev, size, pool, job.ibs[0]!);
  if (r) return r;
  return job;
}

/** amdgpu_job_free_resources(): the IBs return to their pool once the job's fence signals. */
export function amdgpu_job_free_resources(job: amdgpu_job): void {
  for (const ib of job.ibs) amdgpu_ib_free(ib, job.hw_fence);
}

/** amdgpu_job_free(): for a job that was never submitted. */
export function amdgpu_job_free(job: amdgpu_job): void {
  amdgpu_job_free_resources(job);
  for (const f of job.dependencies) dma_fence_put(f);
  job.dependencies.length = 0;
}

/** drm_sched_job_add_dependency(): the job runs after `fence` (a reference is taken). */
export function amdgpu_job_add_dependency(job: amdgpu_job, fence: dma_fence): void {
  job.dependencies.push(dma_fence_get(fence));
}

// ---- submission and the timeout handler (drm_sched_main / drm_sched_job_timedout) -------------

interface ring_tdr {
  work: delayed_work;
  pending: amdgpu_job[];
}

const tdr_of = new WeakMap<amdgpu_ring, ring_tdr>();

function ring_tdr_state(ring: amdgpu_ring): ring_tdr {
  let t = tdr_of.get(ring);
  if (!t) {
    t = { work: new delayed_work(), pending: [] };
    INIT_DELAYED_WORK(t.work, () => amdgpu_job_timedout(ring), `drm_sched_job_timedout/${ring.name}`);
    tdr_of.set(ring, t);
  }
  return t;
}

/** Restarts the timeout for the oldest pending job (drm_sched_start_timeout). */
function arm_tdr(ring: amdgpu_ring): void {
  const t = ring_tdr_state(ring);
  const adev = ring.adev;
  if (t.pending.length) adev.wq.mod_delayed_work(adev.wq.system_wq, t.work, msecs_to_jiffies(ring.sched.timeout_ms));
  else adev.wq.cancel_delayed_work(t.work);
}

/** Waits until the ring has room for one more job in flight (the scheduler's credit check). */
async function wait_for_credit(ring: amdgpu_ring): Promise<void> {
  const drv = ring.fence_drv;
  while (drv.sync_seq - drv.last_seq >= amdgpu_sched_hw_submission) {
    const f = drv.fences[(drv.last_seq + 1) & drv.num_fences_mask];
    if (!f || dma_fence_is_signaled(f)) {
      amdgpu_fence_process(ring);
      if (drv.sync_seq - drv.last_seq < amdgpu_sched_hw_submission) break;
      if (!f) break;
      continue;
    }
    const g = dma_fence_get(f);
    await dma_fence_wait(g, false);
    dma_fence_put(g);
  }
}

/** Runs the job on its ring now: dependencies, credit, ring lock, amdgpu_ib_schedule. */
async function amdgpu_job_run(job: amdgpu_job, ring: amdgpu_ring): Promise<dma_fence | number> {
  for (const f of job.dependencies) await dma_fence_wait(f, false);
  await wait_for_credit(ring);
  await mutex_lock(ring.lock);
  let fence: amdgpu_fence | number;
  try {
    if (!ring.sched.ready) return -ENODEV;
    fence = await amdgpu_ib_schedule(ring, job.ibs, job);
  } finally {
    mutex_unlock(ring.lock);
  }
  if (typeof fence === "number") {
    amdgpu_job_free(job);
    return fence;
  }
  job.hw_fence = fence;
  amdgpu_job_free_resources(job);
  for (const f of job.dependencies) dma_fence_put(f);
  job.dependencies.length = 0;
  const t = ring_tdr_state(ring);
  t.pending.push(job);
  if (t.pending.length === 1) arm_tdr(ring);
  dma_fence_add_callback(fence, new dma_fence_cb(), () => amdgpu_job_done(ring, job));
  return fence;
}

/** drm_sched_job_done(): the job left the hardware; its timeout moves to the next one. */
function amdgpu_job_done(ring: amdgpu_ring, job: amdgpu_job): void {
  const t = ring_tdr_state(ring);
  const i = t.pending.indexOf(job);
  if (i < 0) return;
  t.pending.splice(i, 1);
  if (i === 0) arm_tdr(ring);
  dma_fence_put(job.hw_fence);
}

/**
 * amdgpu_job_submit(): runs the job on its ring and returns a new reference to the fence that
 * signals when it completes (the caller puts it), or -errno if it could not be submitted.
 */
export async function amdgpu_job_submit(job: amdgpu_job): Promise<dma_fence | number> {
  const ring = job.ring;
  if (!ring) {
    amdgpu_job_free(job);
    return -EINVAL;
  }
  const f = await amdgpu_job_run(job, ring);
  return typeof f === "number" ? f : dma_fence_get(f);
}

/** amdgpu_job_submit_direct(): straight to `ring` (ring and IB tests, GPU reset). */
export async function amdgpu_job_submit_direct(job: amdgpu_job, ring: amdgpu_ring): Promise<dma_fence | number> {
  job.ring = ring;
  return amdgpu_job_submit(job);
}

/**
 * amdgpu_job_timedout(): the oldest job of `ring` did not finish within the timeout. Reports
 * it as the kernel does and recovers the GPU.
 */
async function amdgpu_job_timedout(ring: amdgpu_ring): Promise<void> {
  const t = ring_tdr_state(ring);
  const job = t.pending[0];
  const adev = ring.adev;
  if (!job || !job.hw_fence || dma_fence_is_signaled(job.hw_fence)) return;
  if (amdgpu_fence_process(ring) && dma_fence_is_signaled(job.hw_fence)) return;
  adev.k.pr_err(`[drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring ${ring.name} timeout, signaled seq=${ring.fence_drv.last_seq}, emitted seq=${ring.fence_drv.sync_seq}`);
  const r = await amdgpu_device_gpu_recover(adev, ring, job);
  if (r) adev.k.pr_err(`[drm:amdgpu_job_timedout [amdgpu]] *ERROR* GPU Recovery Failed: ${r}`);
}

/** drm_sched_fault(): the engine reported a fatal error; run the timeout handler now. */
export function amdgpu_job_sched_fault(ring: amdgpu_ring): void {
  const t = ring_tdr_state(ring);
  if (t.pending.length) ring.adev.wq.mod_delayed_work(ring.adev.wq.system_wq, t.work, 0);
}

/** Jobs still on the hardware of `ring` (for reset and teardown). */
export function amdgpu_job_pending(ring: amdgpu_ring): readonly amdgpu_job[] {
  return ring_tdr_state(ring).pending;
}

/** Stops the ring's timeout handling (teardown). */
export async function amdgpu_job_stop_timeout(ring: amdgpu_ring): Promise<void> {
  const t = ring_tdr_state(ring);
  await ring.adev.wq.cancel_delayed_work_sync(t.work);
}
