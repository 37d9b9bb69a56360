// kemu addition (amdkfd has no ftrace points in Linux 6.8; its observability is the SMI event
// fd): one trace event per KFD SMI event, system "amdkfd", fired wherever kfd_smi_events.c
// builds an SMI message — whether or not a reader has the fd open — with the message text of
// ../shared/reference/amdkfd.md §5.7 ("<ns> -<pid> @<addr>(<n>) ..."). The names follow
// KFD_SMI_EVENT_* (include/uapi/linux/kfd_ioctl.h).

import { TRACE_EVENT, type tracepoint } from "../../linux/tracepoint.ts";

type smi_args = { pid: number; text: string };

const smi = (name: string): tracepoint<smi_args> => TRACE_EVENT<smi_args>("amdkfd", name, (a) => a.text.replace(/\n$/, ""));

/** By KFD_SMI_EVENT_* value (1-based; 0 and unknown values have none). */
const by_id: ReadonlyArray<tracepoint<smi_args> | null> = [
  null, smi("vmfault"), smi("thermal_throttle"), smi("gpu_pre_reset"), smi("gpu_post_reset"), smi("migrate_start"),
  smi("migrate_end"), smi("page_fault_start"), smi("page_fault_end"), smi("queue_eviction"), smi("queue_restore"),
  smi("unmap_from_gpu"),
];

/** The tracepoint of SMI event `id`, or null. */
export function trace_kfd_smi_event(id: number): tracepoint<smi_args> | null {
  return by_id[id] ?? null;
}
