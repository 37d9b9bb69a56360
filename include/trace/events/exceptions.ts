// Mirrors arch/x86/include/asm/trace/exceptions.h (Linux 6.8): the page-fault tracepoints
// exceptions:page_fault_user and exceptions:page_fault_kernel, hit on every #PF before the
// handler runs. kemu has no instruction pointer, so ip is 0.

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

interface page_fault_args {
  [k: string]: unknown;
  address: number;
  ip: number;
  error_code: number;
}

const fmt = (a: page_fault_args) => `address=0x${a.address.toString(16)} ip=0x${a.ip.toString(16)} error_code=0x${a.error_code.toString(16)}`;

export const trace_page_fault_user = TRACE_EVENT<page_fault_args>("exceptions", "page_fault_user", fmt);
export const trace_page_fault_kernel = TRACE_EVENT<page_fault_args>("exceptions", "page_fault_kernel", fmt);
