// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_process_queue_manager.c (Linux 6.8): a process's user
// queues by queue id. Creating the first queue on a device registers the process with that
// device's queue manager; destroying the last one unregisters it.

import { EINVAL, ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import {
  KFD_MAX_NUM_OF_QUEUES_PER_PROCESS, queue, type kfd_node, type kfd_process, type process_queue_manager,
  type process_queue_node, type queue_properties,
} from "./kfd_priv.ts";
import { kfd_get_process_device_data } from "./kfd_process.ts";
import { dqm_update_queue } from "./kfd_device_queue_manager.ts";

export function pqm_init(pqm: process_queue_manager, p: kfd_process): number {
  void p;
  pqm.queues.length = 0;
  pqm.queue_slot_bitmap.clear();
  return 0;
}

/**
 * pqm_uninit(): forget the process's queues. The devices' queue managers already destroyed
 * them (kfd_process_dequeue_from_all_devices runs first).
 */
export function pqm_uninit(pqm: process_queue_manager): void {
  pqm.queues.length = 0;
  pqm.queue_slot_bitmap.clear();
}

function find_available_queue_slot(pqm: process_queue_manager): number {
  for (let id = 0; id < KFD_MAX_NUM_OF_QUEUES_PER_PROCESS; id++) if (!pqm.queue_slot_bitmap.has(id)) return id;
  return -1;
}

function get_queue_by_qid(pqm: process_queue_manager, qid: number): process_queue_node | null {
  return pqm.queues.find((pqn) => pqn.q.properties.queue_id === qid) ?? null;
}

export function pqm_get_user_queue(pqm: process_queue_manager, qid: number): queue | null {
  return get_queue_by_qid(pqm, qid)?.q ?? null;
}

/**
 * pqm_create_queue(): a queue id, the queue object, and the device queue manager's create.
 * Returns the queue id and its doorbell's dword offset in the BAR.
 */
export async function pqm_create_queue(pqm: process_queue_manager, dev: kfd_node, properties: queue_properties): Promise<{ qid: number; doorbell_off: number } | number> {
  const p = pqm.process;
  const pdd = kfd_get_process_device_data(dev, p);
  if (!pdd) return -EINVAL;
  const qid = find_available_queue_slot(pqm);
  if (qid < 0) return -ENOMEM;
  const qpd = pdd.qpd;
  // The first queue of a process on a device registers it with that device's DQM.
  if (qpd.queues_list.length === 0) await dev.dqm.ops.register_process(dev.dqm, qpd);
  const q = new queue(p, dev);
  Object.assign(q.properties, properties);
  q.properties.queue_id = qid;
  pqm.queue_slot_bitmap.add(qid);
  const r = await dev.dqm.ops.create_queue(dev.dqm, q, qpd);
  if (r) {
    pqm.queue_slot_bitmap.delete(qid);
    if (qpd.queues_list.length === 0) await dev.dqm.ops.unregister_process(dev.dqm, qpd);
    return r;
  }
  pqm.queues.push({ q });
  return { qid, doorbell_off: q.properties.doorbell_off };
}

/** pqm_destroy_queue(): -EINVAL for an unknown queue id. */
export async function pqm_destroy_queue(pqm: process_queue_manager, qid: number): Promise<number> {
  const pqn = get_queue_by_qid(pqm, qid);
  if (!pqn) return -EINVAL;
  const q = pqn.q;
  const dev = q.device;
  const pdd = kfd_get_process_device_data(dev, pqm.process);
  if (!pdd) return -EINVAL;
  const r = await dev.dqm.ops.destroy_queue(dev.dqm, pdd.qpd, q);
  pqm.queues.splice(pqm.queues.indexOf(pqn), 1);
  pqm.queue_slot_bitmap.delete(qid);
  if (pdd.qpd.queues_list.length === 0) await dev.dqm.ops.unregister_process(dev.dqm, pdd.qpd);
  return r;
}

/** pqm_update_queue_properties(): new ring address/size, percentage and priority. */
export async function pqm_update_queue_properties(pqm: process_queue_manager, qid: number, p: Pick<queue_properties, "queue_address" | "queue_size" | "queue_percent" | "priority">): Promise<number> {
  const pqn = get_queue_by_qid(pqm, qid);
  if (!pqn) return -EINVAL;
  Object.assign(pqn.q.properties, p);
  return dqm_update_queue(pqn.q.device.dqm, pqn.q);
}
