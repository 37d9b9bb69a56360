// Mirrors include/trace/events/task.h (Linux 6.8): task:task_newtask, hit by copy_process()
// once the new task exists.

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

export const trace_task_newtask = TRACE_EVENT<{ pid: number; comm: string; clone_flags: number; oom_score_adj: number }>(
  "task", "task_newtask",
  (a) => `pid=${a.pid} comm=${a.comm} clone_flags=${a.clone_flags.toString(16)} oom_score_adj=${a.oom_score_adj}`,
);
