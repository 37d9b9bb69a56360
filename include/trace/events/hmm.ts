// kemu addition (Linux 6.8 has no HMM tracepoints): hmm:hmm_range_fault, hit when
// hmm_range_fault() returns — the range, its default flags and the result (0, -EBUSY when an
// invalidation raced, or another -errno).

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

export const trace_hmm_range_fault = TRACE_EVENT<{ start: number; end: number; default_flags: string; ret: number }>(
  "hmm", "hmm_range_fault",
  (a) => `start=0x${a.start.toString(16)} end=0x${a.end.toString(16)} default_flags=${a.default_flags} ret=${a.ret}`,
);
