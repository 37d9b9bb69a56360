// Mirrors arch/x86/mm/fault.c (Linux 6.8): the #PF handler for user addresses —
// do_user_addr_fault() with lock_mm_and_find_vma (6.5+), access_error() against the VMA,
// handle_mm_fault with FAULT_FLAG_DEFAULT | USER [| WRITE | INSTRUCTION], the VM_FAULT_RETRY
// retry with FAULT_FLAG_TRIED, and the outcomes: SIGSEGV (SEGV_MAPERR / SEGV_ACCERR), SIGBUS
// (BUS_ADRERR), the OOM path, and for kernel-mode accesses (copy_from_user) the exception-table
// fixup. Also the CPU side of user loads/stores: cpu_user_read / cpu_user_write translate each
// page through the MMU model and enter the fault handler on #PF, as the hardware would.
//
// kemu: no per-VMA locks (always mmap_lock), no protection keys, no vsyscall, no SMAP.

import type { Kernel } from "../../../kernel/kernel.ts";
import type { mm_struct, vm_area_struct } from "../../../include/linux/mm_types.ts";
import {
  FAULT_FLAG_DEFAULT, FAULT_FLAG_USER, FAULT_FLAG_WRITE, FAULT_FLAG_INSTRUCTION, FAULT_FLAG_TRIED, VM_FAULT_RETRY,
  VM_FAULT_COMPLETED, VM_FAULT_ERROR, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_HWPOISON, VM_FAULT_HWPOISON_LARGE,
  VM_FAULT_SIGSEGV, VM_WRITE, PAGE_SIZE, vma_is_accessible,
} from "../../../include/linux/mm.ts";
import { X86_PF_PROT, X86_PF_WRITE, X86_PF_USER, X86_PF_INSTR, X86_PF_RSVD, X86_PF_PK, type MmuAccess } from "../../../hw/cpu_mmu.ts";
import { NODE_DATA } from "../../../include/linux/mmzone.ts";
import { handle_mm_fault, lock_mm_and_find_vma } from "../../../mm/memory.ts";
import { mmap_read_unlock } from "../../../include/linux/mmap_lock.ts";
import { fatal_signal_pending, signal_pending } from "../../../kernel/sched/wait.ts";
import { pagefault_out_of_memory } from "../../../mm/oom_kill.ts";
import { ftrace } from "../../../include/linux/ftrace.ts";
import { trace_page_fault_kernel, trace_page_fault_user } from "../../../include/trace/events/exceptions.ts";

// Signals and si_codes (include/uapi/asm-generic/signal.h, siginfo.h).
export const SIGBUS = 7;
export const SIGKILL = 9;
export const SIGSEGV = 11;
export const SEGV_MAPERR = 1;
export const SEGV_ACCERR = 2;
export const BUS_ADRERR = 2;
export const BUS_MCEERR_AR = 4;
export const SI_KERNEL = 0x80;

const signames: Record<number, string> = { [SIGBUS]: "SIGBUS", [SIGKILL]: "SIGKILL", [SIGSEGV]: "SIGSEGV" };

/** What force_sig_fault() delivers; the runtime rejects the user access with it. */
export class SigError extends Error {
  constructor(
    readonly signo: number,
    readonly si_code: number,
    readonly addr: number,
  ) {
    super(`${signames[signo] ?? `signal ${signo}`} at 0x${addr.toString(16)} (si_code ${si_code})`);
    this.name = "SigError";
  }
}

/** The result of one #PF: 0 = resolved (retry the access), else the signal it ends in. */
export type fault_outcome = 0 | { signo: number; si_code: number; addr: number };

/** access_error(error_code, vma): may this access happen in this VMA at all? */
export function access_error(error_code: number, vma: vm_area_struct): boolean {
  if (error_code & X86_PF_PK) return true;
  if (error_code & X86_PF_WRITE) return !(vma.vm_flags & VM_WRITE);
  if (error_code & X86_PF_PROT) return true; // read of a present page the PTE forbids
  return !vma_is_accessible(vma);
}

/** show_signal_msg(): the "segfault at" line of an unhandled SIGSEGV. */
function show_signal_msg(k: Kernel, error_code: number, address: number): void {
  const t = k.current;
  k.pr_info(`${t.comm}[${t.pid}]: segfault at ${address.toString(16)} ip 0000000000000000 sp 0000000000000000 error ${error_code.toString(16)}`);
}

function bad_area(k: Kernel, error_code: number, address: number, si_code: number): fault_outcome {
  if (error_code & X86_PF_USER) show_signal_msg(k, error_code, address);
  return { signo: SIGSEGV, si_code, addr: address };
}

function do_sigbus(address: number, fault: number): fault_outcome {
  const code = fault & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE) ? BUS_MCEERR_AR : BUS_ADRERR;
  return { signo: SIGBUS, si_code: code, addr: address };
}

/**
 * do_user_addr_fault(mm, error_code, address): resolve a #PF on a user address. kemu passes the
 * mm (the kernel uses current->mm). A kernel-mode fault (no X86_PF_USER: copy_from_user) that
 * cannot be resolved returns the signal it would have raised; the caller applies its fixup.
 */
export async function do_user_addr_fault(k: Kernel, mm: mm_struct | null, error_code: number, address: number): Promise<fault_outcome> {
  using _ = ftrace(k, "do_user_addr_fault");
  if (error_code & X86_PF_RSVD) {
    k.pr_alert(`${k.current.comm}: Corrupted page table at address ${address.toString(16)}`);
    k.BUG("pgtable_bad");
  }
  // faulthandler_disabled(): atomic context or no user mm → straight to bad_area.
  if (!mm || k.sched.in_atomic()) return bad_area(k, error_code, address, SEGV_MAPERR);
  let flags = FAULT_FLAG_DEFAULT;
  if (error_code & X86_PF_USER) flags |= FAULT_FLAG_USER;
  if (error_code & X86_PF_WRITE) flags |= FAULT_FLAG_WRITE;
  if (error_code & X86_PF_INSTR) flags |= FAULT_FLAG_INSTRUCTION;
  let fault: number;
  for (;;) {
    const vma = await lock_mm_and_find_vma(mm, address);
    if (!vma) return bad_area(k, error_code, address, SEGV_MAPERR);
    if (access_error(error_code, vma)) {
      mmap_read_unlock(mm);
      return bad_area(k, error_code, address, SEGV_ACCERR);
    }
    fault = await handle_mm_fault(vma, address, flags, null);
    // fault_signal_pending(): a retry interrupted by a signal goes back to deliver it.
    if (fault & VM_FAULT_RETRY && (fatal_signal_pending(k.current) || (flags & FAULT_FLAG_USER && signal_pending(k.current)))) {
      return error_code & X86_PF_USER ? 0 : { signo: SIGBUS, si_code: BUS_ADRERR, addr: address };
    }
    if (fault & VM_FAULT_COMPLETED) return 0;
    if (fault & VM_FAULT_RETRY) {
      flags |= FAULT_FLAG_TRIED;
      continue;
    }
    mmap_read_unlock(mm);
    break;
  }
  if (!(fault & VM_FAULT_ERROR)) return 0;
  if (fault & VM_FAULT_OOM) {
    if (!(error_code & X86_PF_USER)) return { signo: SIGSEGV, si_code: SEGV_MAPERR, addr: address };
    return pagefault_out_of_memory(k);
  }
  if (fault & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) return do_sigbus(address, fault);
  if (fault & VM_FAULT_SIGSEGV) return bad_area(k, error_code, address, SEGV_MAPERR);
  k.BUG("do_user_addr_fault: unexpected fault result");
}

/**
 * exc_page_fault() → handle_page_fault(): the #PF exception entry — the page-fault tracepoint,
 * then the user-address handler (kemu takes no kernel-address faults).
 */
async function exc_page_fault(k: Kernel, mm: mm_struct, error_code: number, address: number): Promise<fault_outcome> {
  using _ = ftrace(k, "exc_page_fault");
  const tp = error_code & X86_PF_USER ? trace_page_fault_user : trace_page_fault_kernel;
  tp.trace(k, { address, ip: 0, error_code });
  return await do_user_addr_fault(k, mm, error_code, address);
}

// ---- the CPU executing user loads and stores ---------------------------------------------------

/** Consecutive faults on one access before kemu reports a livelock instead of spinning. */
const MAX_FAULT_RETRIES = 1000;

/**
 * One access through the MMU: the physical address, after taking as many #PFs as needed. A
 * user-mode access that ends in a signal throws SigError; a kernel-mode one returns -1 (fixup).
 */
export async function cpu_access(k: Kernel, mm: mm_struct, va: number, access: MmuAccess, user: boolean): Promise<number> {
  const cpu = NODE_DATA(k).cpu;
  for (let tries = 0; ; tries++) {
    const t = cpu.translate(mm.pgd, mm.context_id, va, access, user);
    if (t.ok) return t.pa;
    if (t.kind === "gp") {
      if (user) throw new SigError(SIGSEGV, SI_KERNEL, 0);
      return -1;
    }
    if (tries >= MAX_FAULT_RETRIES) {
      k.pr_err(`kemu: livelock: ${access} at 0x${va.toString(16)} faulted ${tries} times without progress`);
      k.record_splat("warn", "fault livelock");
      if (user) throw new SigError(SIGBUS, BUS_ADRERR, va);
      return -1;
    }
    const r = await exc_page_fault(k, mm, t.error_code, va);
    if (r === 0) {
      if (fatal_signal_pending(k.current)) {
        if (user) throw new SigError(SIGKILL, SI_KERNEL, va);
        return -1;
      }
      continue;
    }
    if (user) throw new SigError(r.signo, r.si_code, r.addr);
    return -1;
  }
}

function current_mm(k: Kernel): mm_struct {
  const mm = k.current.mm as mm_struct | null;
  if (!mm) throw new SigError(SIGSEGV, SEGV_MAPERR, 0);
  return mm;
}

/**
 * The buffers user loads return come from 1 MiB host slabs: a view costs a fraction of a fresh
 * ArrayBuffer, which dominates a 4 KiB read otherwise. (Host memory only, like Node's Buffer pool.)
 */
const SLAB = 1 << 20;
let slab = new ArrayBuffer(SLAB);
let slab_off = 0;

function load_buffer(len: number): Uint8Array {
  if (len > SLAB / 16) return new Uint8Array(len);
  if (slab_off + len > SLAB) {
    slab = new ArrayBuffer(SLAB);
    slab_off = 0;
  }
  const b = new Uint8Array(slab, slab_off, len);
  slab_off += (len + 7) & ~7;
  return b;
}

/** User-mode loads of `len` bytes at `addr` by the current task (Process.read). */
export async function cpu_user_read(k: Kernel, addr: number, len: number): Promise<Uint8Array> {
  const mm = current_mm(k);
  const physmem = NODE_DATA(k).physmem;
  const out = load_buffer(len);
  for (let done = 0; done < len; ) {
    const va = addr + done;
    const n = Math.min(len - done, PAGE_SIZE - (va % PAGE_SIZE));
    const pa = await cpu_access(k, mm, va, "read", true);
    physmem.read_into(pa, out, done, n);
    done += n;
  }
  return out;
}

/** User-mode stores of `data` at `addr` by the current task (Process.write). */
export async function cpu_user_write(k: Kernel, addr: number, data: Uint8Array): Promise<void> {
  const mm = current_mm(k);
  const physmem = NODE_DATA(k).physmem;
  for (let done = 0; done < data.length; ) {
    const va = addr + done;
    const n = Math.min(data.length - done, PAGE_SIZE - (va % PAGE_SIZE));
    const pa = await cpu_access(k, mm, va, "write", true);
    physmem.write(pa, data, done, n);
    done += n;
  }
}
