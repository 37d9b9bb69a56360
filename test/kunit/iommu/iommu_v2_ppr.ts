// KUnit suite for iommu/amd/iommu_v2.ts on the APU machine: PASID binding and the PPR path from
// the GPU's PRI page request to the PRG Response it receives. Covers the PRI group rules
// (inflight/finish: one response per group, after its last request and its last fault; status
// "last writer wins"), every response code of the outcome table (SUCCESS, INVALID for no VMA / a
// forbidden access / an unknown or torn-down PASID, FAILURE from the driver callback, nothing at
// all for an unknown device or an unknown request type), the GFP_ATOMIC OOM path under failslab
// (SUCCESS, the device faults again, then succeeds), the mmu notifier flushing one page versus
// the whole PASID, unbinding while faults are queued, process exit, and the bind/init errors.

import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_NOT_NULL, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_EXPECT_EQ,
  KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GE, KUNIT_EXPECT_MEMEQ, KUNIT_EXPECT_TRUE, type kunit, type kunit_param,
  type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { FAULT_INJECT } from "../../../kernel/tokens.ts";
import { EBUSY, EINVAL, ENOMEM } from "../../../include/uapi/asm-generic/errno.ts";
import { PAGE_SIZE } from "../../../include/linux/mm.ts";
import { NODE_DATA } from "../../../include/linux/mmzone.ts";
import { PROT_EXEC, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman-common.ts";
import { mmap_write_lock, mmap_write_unlock } from "../../../include/linux/mmap_lock.ts";
import { vm_munmap } from "../../../mm/mmap.ts";
import { atomic_read } from "../../../include/linux/atomic.ts";
import {
  AMD_IOMMU_INV_PRI_RSP_FAIL, AMD_IOMMU_INV_PRI_RSP_INVALID, AMD_IOMMU_INV_PRI_RSP_SUCCESS,
} from "../../../include/linux/amd-iommu.ts";
import {
  PPR_FAILURE, PPR_FAULT_READ, PPR_FAULT_USER, PPR_INVALID, PPR_SUCCESS, ppr_entry_word0,
} from "../../../iommu/amd/amd_iommu_types.ts";
import type { pasid_state } from "../../../iommu/amd/iommu_v2.ts";
import { pci_enable_ats, pci_enable_pasid, pci_enable_pri } from "../../../drivers/pci/ats.ts";
import { anon_map, fill, is_none, peek, poke } from "../mm/util.ts";
import {
  APU_TEST_MACHINE, TEST_PASIDS, apu_setup, device_access, page_request, ppr_settle, responses, type apu_env,
} from "./iommu_util.ts";

function physmem(env: apu_env) {
  return NODE_DATA(env.k).physmem;
}

/** The pasid_state of the env's binding (lookup and put, as the driver's helpers do). */
function state_of(env: apu_env, pasid = env.pasid): pasid_state | null {
  const dev_state = env.v2.get_device_state(env.amd.get_pci_sbdf_id(env.pdev));
  if (!dev_state) return null;
  const s = env.v2.get_pasid_state(dev_state, pasid);
  if (s) env.v2.put_pasid_state(s);
  env.v2.put_device_state(dev_state);
  return s;
}

function domain_id(env: apu_env): number {
  return env.amd.dev_iommu_priv_get(env.pdev.dev)!.domain!.id;
}

// ---- binding and the basic path -----------------------------------------------------------------

/** GPU reads of what the CPU wrote hit through ATS; untouched pages come in through PRI. */
async function read_and_write_through_pri(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 4);
  await poke(env.mm, va, fill(16, 0x5a));
  const pa0 = await device_access(env, va, "read");
  KUNIT_ASSERT_TRUE(test, typeof pa0 === "number", `read of a CPU-written page: ${pa0}`);
  KUNIT_EXPECT_MEMEQ(test, physmem(env).read(pa0 as number, 16), fill(16, 0x5a), 16);
  KUNIT_EXPECT_EQ(test, env.ats.stats.page_requests, 0, "a present page needs no page request");
  KUNIT_EXPECT_TRUE(test, is_none(env.mm, va + PAGE_SIZE));
  const pa1 = await device_access(env, va + PAGE_SIZE, "write");
  KUNIT_ASSERT_TRUE(test, typeof pa1 === "number", `write to a never-touched page: ${pa1}`);
  physmem(env).write(pa1 as number, fill(8, 0xc3));
  KUNIT_EXPECT_MEMEQ(test, await peek(env.mm, va + PAGE_SIZE, 8), fill(8, 0xc3), 8, "the CPU sees the GPU's write");
  KUNIT_EXPECT_GE(test, env.ats.stats.page_requests, 1);
  KUNIT_EXPECT_EQ(test, env.ats.stats.responses_success, env.ats.stats.page_requests);
  KUNIT_EXPECT_EQ(test, env.ats.stats.unexpected_responses, 0);
}

// ---- PRI group rules -------------------------------------------------------------------------------

/** Non-last requests alone get nothing; the group is answered once, after its last request. */
async function group_answered_once_after_last(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 4);
  const from = env.ats.response_log.length;
  const cmds = env.hw.stats.complete_ppr;
  page_request(env, va, 5, false);
  page_request(env, va + PAGE_SIZE, 5, false);
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, responses(env, 5, from).length, 0, "no response before the last request");
  KUNIT_EXPECT_EQ(test, atomic_read(state_of(env)!.pri[5]!.inflight), 0, "both faults ran");
  page_request(env, va + 2 * PAGE_SIZE, 5, true);
  await ppr_settle(env);
  const r = responses(env, 5, from);
  KUNIT_ASSERT_EQ(test, r.length, 1);
  KUNIT_EXPECT_EQ(test, r[0]!.code, PPR_SUCCESS);
  KUNIT_EXPECT_EQ(test, r[0]!.pasid, env.pasid, "pri_tlp: the response carries the PASID");
  KUNIT_EXPECT_EQ(test, env.hw.stats.complete_ppr - cmds, 1, "one COMPLETE_PPR for three requests");
  const q = state_of(env)!.pri[5]!;
  KUNIT_EXPECT_EQ(test, atomic_read(q.inflight), 0);
  KUNIT_EXPECT_FALSE(test, q.finish, "slot reset");
  KUNIT_EXPECT_EQ(test, q.status, PPR_SUCCESS);
}

/** The "last" request may be finished before earlier ones: the response waits for inflight == 0. */
async function last_request_first_still_waits(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 4);
  const from = env.ats.response_log.length;
  // Hold mmap_lock so the queued faults cannot run, then let the last one arrive first.
  await mmap_write_lock(env.mm);
  page_request(env, va + 3 * PAGE_SIZE, 9, true);
  page_request(env, va, 9, false);
  await ppr_settle(env);
  const q = state_of(env)!.pri[9]!;
  KUNIT_EXPECT_EQ(test, atomic_read(q.inflight), 2);
  KUNIT_EXPECT_TRUE(test, q.finish);
  KUNIT_EXPECT_EQ(test, responses(env, 9, from).length, 0);
  mmap_write_unlock(env.mm);
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, responses(env, 9, from).length, 1);
}

/** A group's status is the last error any of its requests recorded. */
async function group_status_last_writer_wins(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 2);
  const hole = va + 64 * PAGE_SIZE; // no VMA there
  const from = env.ats.response_log.length;
  page_request(env, va, 3, false);
  page_request(env, hole, 3, false);
  page_request(env, va + PAGE_SIZE, 3, true);
  await ppr_settle(env);
  const r = responses(env, 3, from);
  KUNIT_ASSERT_EQ(test, r.length, 1);
  KUNIT_EXPECT_EQ(test, r[0]!.code, PPR_INVALID, "one bad page fails the whole group");
  KUNIT_EXPECT_FALSE(test, is_none(env.mm, va), "the good pages were still faulted in");
}

// ---- response codes -----------------------------------------------------------------------------

interface code_case {
  desc: string;
  prot: number;
  /** Where the device goes: inside the mapping or past it (no VMA). */
  in_vma: boolean;
  access: "read" | "write" | "exec";
  /** The invalid-PPR callback's answer, or undefined for no callback. */
  cb?: number;
  code: number;
  /** What the device's access ends as. */
  outcome: string;
}

const CODE_CASES: code_case[] = [
  { desc: "resolvable read", prot: PROT_READ | PROT_WRITE, in_vma: true, access: "read", code: PPR_SUCCESS, outcome: "ok" },
  { desc: "no VMA", prot: PROT_READ, in_vma: false, access: "read", code: PPR_INVALID, outcome: "invalid" },
  { desc: "write to read-only VMA", prot: PROT_READ, in_vma: true, access: "write", code: PPR_INVALID, outcome: "invalid" },
  // attach enables PASID without EXEC (pdev_pri_ats_enable): instruction fetches are requested as reads.
  { desc: "fetch from a non-exec VMA", prot: PROT_READ | PROT_WRITE, in_vma: true, access: "exec", code: PPR_SUCCESS, outcome: "ok" },
  { desc: "callback INVALID", prot: PROT_READ, in_vma: false, access: "read", cb: AMD_IOMMU_INV_PRI_RSP_INVALID, code: PPR_INVALID, outcome: "invalid" },
  { desc: "callback FAIL", prot: PROT_READ, in_vma: false, access: "read", cb: AMD_IOMMU_INV_PRI_RSP_FAIL, code: PPR_FAILURE, outcome: "failure" },
  { desc: "callback SUCCESS", prot: PROT_READ, in_vma: false, access: "read", cb: AMD_IOMMU_INV_PRI_RSP_SUCCESS, code: PPR_SUCCESS, outcome: "still pending" },
];

function code_params(): kunit_param[] {
  return CODE_CASES.map((c) => ({ value: c, desc: c.desc }));
}

/** Each outcome of do_fault/handle_fault_error, as the device's access sees it. */
async function response_codes(test: kunit): Promise<void> {
  const c = test.param_value as code_case;
  const env = await apu_setup(test);
  const calls: Array<{ pasid: number; address: number; flags: number }> = [];
  if (c.cb !== undefined) {
    const cb = c.cb;
    env.v2.amd_iommu_set_invalid_ppr_cb(env.pdev, (_pdev, pasid, address, flags) => {
      calls.push({ pasid, address, flags });
      return cb;
    });
  }
  const va = await anon_map(env.mm, 2, c.prot);
  const target = c.in_vma ? va : va + 128 * PAGE_SIZE;
  const from = env.ats.response_log.length;
  const outcome = await device_access(env, target, c.access, 3);
  KUNIT_EXPECT_EQ(test, typeof outcome === "number" ? "ok" : outcome, c.outcome);
  const codes = env.ats.response_log.slice(from).map((r) => r.code);
  KUNIT_ASSERT_TRUE(test, codes.length >= 1, "the device got a response");
  KUNIT_EXPECT_EQ(test, codes[0], c.code);
  if (c.cb !== undefined) {
    KUNIT_ASSERT_TRUE(test, calls.length >= 1, "the invalid-PPR callback ran");
    KUNIT_EXPECT_EQ(test, calls[0]!.pasid, env.pasid);
    KUNIT_EXPECT_EQ(test, calls[0]!.address, target);
    KUNIT_EXPECT_EQ(test, calls[0]!.flags & (PPR_FAULT_READ | PPR_FAULT_USER), PPR_FAULT_READ | PPR_FAULT_USER);
  }
  KUNIT_EXPECT_EQ(test, env.ats.response_failure(), c.code === PPR_FAILURE, "Response Failure stops PRI");
}

// ---- requests that get INVALID or nothing ------------------------------------------------------------

/** A request with Execute Requested (PPR_FAULT_EXEC) is checked against VM_EXEC by access_error(). */
async function exec_request_needs_vm_exec(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const rw = await anon_map(env.mm, 1, PROT_READ | PROT_WRITE);
  const rx = await anon_map(env.mm, 1, PROT_READ | PROT_EXEC);
  const from = env.ats.response_log.length;
  page_request(env, rw, 1, true, { exec: true });
  page_request(env, rx, 2, true, { exec: true });
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, responses(env, 1, from).map((r) => r.code).join(), `${PPR_INVALID}`, "no VM_EXEC");
  KUNIT_EXPECT_EQ(test, responses(env, 2, from).map((r) => r.code).join(), `${PPR_SUCCESS}`);
}

/** A device iommu_v2 does not know: the entry is logged and dropped, the request stays outstanding. */
async function unknown_device_gets_no_response(test: kunit): Promise<void> {
  const env = await apu_setup(test, { init: false });
  // Another driver turned PRI on without amd_iommu_init_device: nobody will answer.
  KUNIT_ASSERT_EQ(test, pci_enable_pasid(env.pdev, 0), 0);
  KUNIT_ASSERT_EQ(test, pci_enable_pri(env.pdev, 32), 0);
  KUNIT_ASSERT_EQ(test, pci_enable_ats(env.pdev, 12), 0);
  const logged = env.hw.stats.ppr_logged;
  const r = env.ats.request_pages(env.pasid, [0x10000], "read");
  KUNIT_EXPECT_EQ(test, r.kind, "pending");
  await ppr_settle(env, 5);
  KUNIT_EXPECT_EQ(test, env.hw.stats.ppr_logged - logged, 1, "the IOMMU logged it");
  KUNIT_EXPECT_EQ(test, env.ats.response_log.length, 0, "deliberate silence");
  KUNIT_EXPECT_EQ(test, env.ats.outstanding_requests(), 1, "the device keeps waiting");
}

/** Known device, unknown PASID: INVALID at once, even for a non-last request, untracked. */
async function unknown_pasid_invalid_untracked(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const from = env.ats.response_log.length;
  page_request(env, 0x20000, 7, false, { pasid: env.pasid + 1 });
  await ppr_settle(env);
  const r = responses(env, 7, from);
  KUNIT_ASSERT_EQ(test, r.length, 1);
  KUNIT_EXPECT_EQ(test, r[0]!.code, PPR_INVALID);
  KUNIT_EXPECT_EQ(test, r[0]!.pasid, env.pasid + 1);
  KUNIT_EXPECT_EQ(test, atomic_read(state_of(env)!.pri[7]!.inflight), 0, "the bound PASID's slot is untouched");
}

/**
 * Process exit: mn_release runs the driver's shutdown callback once and unbinds (invalid, GCR3
 * cleared, iommu_wq drained). Later requests for the PASID get INVALID until the driver's
 * amd_iommu_unbind_pasid, which does not call the callback again.
 */
async function exit_tears_pasid_down(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const ctx_calls: number[] = [];
  env.v2.amd_iommu_set_invalidate_ctx_cb(env.pdev, (_pdev, pasid) => {
    ctx_calls.push(pasid);
  });
  const va = await anon_map(env.mm, 1);
  KUNIT_ASSERT_TRUE(test, typeof (await device_access(env, va, "write")) === "number");
  await test.k.sched.wait_for(env.proc.exit(), "exit");
  KUNIT_EXPECT_EQ(test, ctx_calls.join(), `${env.pasid}`);
  const state = state_of(env);
  KUNIT_ASSERT_NOT_NULL(test, state, "still in the table until the driver unbinds");
  KUNIT_EXPECT_TRUE(test, state!.invalid);
  const t = env.hw.ats_translate(env.devid, { pasid: env.pasid, va, write: false, exec: false, priv: false });
  KUNIT_EXPECT_TRUE(test, t.status === "ok" && !t.r, "GCR3 entry cleared: no translation");
  const from = env.ats.response_log.length;
  page_request(env, va, 11, true);
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, responses(env, 11, from).map((r) => r.code).join(), `${PPR_INVALID}`);
  await env.v2.amd_iommu_unbind_pasid(env.pdev, env.pasid);
  env.bound = false;
  KUNIT_EXPECT_EQ(test, ctx_calls.length, 1, "no second shutdown callback");
  KUNIT_EXPECT_EQ(test, state_of(env), null);
}

/** An entry of an unknown type: a ratelimited error and no response at all. */
async function unknown_request_type_dropped(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const w = ppr_entry_word0(env.devid, env.pasid, 0x204, PPR_FAULT_READ, 2);
  KUNIT_ASSERT_TRUE(test, env.hw.log_ppr_raw(w.lo, w.hi, 0x10000));
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, env.ats.response_log.length, 0);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("AMD-Vi: Unknown PPR request received")));
}

/** 6.5 does not check PPR_FAULT_RSVD: a reserved-bit request is served like any other. */
async function reserved_bit_request_served(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 1);
  const from = env.ats.response_log.length;
  page_request(env, va, 4, true, { rsvd: true });
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, responses(env, 4, from).map((r) => r.code).join(), `${PPR_SUCCESS}`);
  KUNIT_EXPECT_FALSE(test, is_none(env.mm, va), "faulted in despite RSVD");
}

// ---- OOM ---------------------------------------------------------------------------------------

/**
 * failslab on the GFP_ATOMIC struct fault: the request is finished at once, its group answers
 * SUCCESS without the page being mapped, the device translates again, misses, re-requests, and
 * the second request is served.
 */
async function oom_answers_success_and_device_refaults(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 1);
  const fi = test.machine.symbol(FAULT_INJECT);
  fi.write_knob("failslab", "verbose", "1");
  fi.write_knob("failslab", "times", "1");
  fi.write_knob("failslab", "probability", "100");
  KUNIT_EXPECT_EQ(test, env.ats.translate(env.pasid, va, "write").kind, "pending");
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, env.ats.stats.responses_success, 1, "SUCCESS despite OOM");
  KUNIT_EXPECT_TRUE(test, is_none(env.mm, va), "nothing was mapped");
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("FAULT_INJECTION: forcing a failure")));
  const pa = await device_access(env, va, "write");
  KUNIT_EXPECT_TRUE(test, typeof pa === "number", `the re-fault succeeds: ${pa}`);
  KUNIT_EXPECT_EQ(test, env.ats.stats.page_requests, 2, "the device faulted again");
  KUNIT_EXPECT_EQ(test, env.ats.stats.responses_success, 2);
  KUNIT_EXPECT_FALSE(test, is_none(env.mm, va));
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "times"), "0\n");
}

// ---- the mmu notifier --------------------------------------------------------------------------

/** munmap of one page flushes that page of the PASID; of two pages, the whole PASID. */
async function invalidate_one_page_vs_whole_pasid(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 4);
  for (let i = 0; i < 4; i++) {
    await poke(env.mm, va + i * PAGE_SIZE, fill(4, i + 1));
    KUNIT_ASSERT_TRUE(test, typeof (await device_access(env, va + i * PAGE_SIZE, "read")) === "number");
  }
  const dom = domain_id(env);
  for (let i = 0; i < 4; i++) KUNIT_ASSERT_TRUE(test, env.hw.iotlb_has(dom, env.pasid, va + i * PAGE_SIZE));
  let iommu_cmds = env.hw.stats.inv_iommu_pages;
  let iotlb_cmds = env.hw.stats.inv_iotlb_pages;
  KUNIT_ASSERT_EQ(test, await vm_munmap(env.mm, va + PAGE_SIZE, PAGE_SIZE), 0);
  KUNIT_EXPECT_EQ(test, env.hw.stats.inv_iommu_pages - iommu_cmds, 1);
  KUNIT_EXPECT_EQ(test, env.hw.stats.inv_iotlb_pages - iotlb_cmds, 1, "the device TLB too");
  KUNIT_EXPECT_FALSE(test, env.hw.iotlb_has(dom, env.pasid, va + PAGE_SIZE), "the unmapped page is gone");
  KUNIT_EXPECT_TRUE(test, env.hw.iotlb_has(dom, env.pasid, va), "its neighbours stay cached");
  KUNIT_EXPECT_TRUE(test, env.hw.iotlb_has(dom, env.pasid, va + 2 * PAGE_SIZE));
  const hits = env.ats.stats.atc_hits;
  KUNIT_EXPECT_TRUE(test, typeof (await device_access(env, va, "read")) === "number");
  KUNIT_EXPECT_EQ(test, env.ats.stats.atc_hits - hits, 1, "the device's ATC kept the other pages");
  KUNIT_EXPECT_EQ(test, await device_access(env, va + PAGE_SIZE, "read"), "invalid", "the unmapped page faults");
  iommu_cmds = env.hw.stats.inv_iommu_pages;
  iotlb_cmds = env.hw.stats.inv_iotlb_pages;
  KUNIT_ASSERT_EQ(test, await vm_munmap(env.mm, va + 2 * PAGE_SIZE, 2 * PAGE_SIZE), 0);
  KUNIT_EXPECT_EQ(test, env.hw.stats.inv_iommu_pages - iommu_cmds, 1);
  KUNIT_EXPECT_EQ(test, env.hw.stats.inv_iotlb_pages - iotlb_cmds, 1);
  KUNIT_EXPECT_FALSE(test, env.hw.iotlb_has(dom, env.pasid, va), "a multi-page range flushes the whole PASID");
  KUNIT_EXPECT_EQ(test, env.hw.iotlb_entries(), 0);
}

// ---- unbinding with faults in flight ------------------------------------------------------------

/**
 * amd_iommu_unbind_pasid with faults queued: the slot is cleared first (a new request gets
 * INVALID), mn_release runs the shutdown callback, clears GCR3 and drains iommu_wq — which waits
 * for the queued faults; they answer their groups (SUCCESS: the mm is alive), and the state is
 * freed once no fault holds it.
 */
async function unbind_while_faults_queued(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const ctx_calls: number[] = [];
  env.v2.amd_iommu_set_invalidate_ctx_cb(env.pdev, (_p, pasid) => {
    ctx_calls.push(pasid);
  });
  const va = await anon_map(env.mm, 8);
  const from = env.ats.response_log.length;
  await mmap_write_lock(env.mm);
  for (let i = 0; i < 4; i++) page_request(env, va + i * PAGE_SIZE, 10 + i, true);
  await ppr_settle(env);
  const state = state_of(env)!;
  KUNIT_EXPECT_EQ(test, atomic_read(state.count), 5, "the bind reference and four queued faults");
  const unbind = test.k.sched.kthread_run(() => env.v2.amd_iommu_unbind_pasid(env.pdev, env.pasid), "unbind");
  await test.k.msleep(1);
  KUNIT_EXPECT_EQ(test, ctx_calls.join(), `${env.pasid}`, "the driver dequeued while the PASID was still bound");
  KUNIT_EXPECT_TRUE(test, state.invalid);
  page_request(env, va + 5 * PAGE_SIZE, 20, true);
  await ppr_settle(env);
  KUNIT_EXPECT_EQ(test, responses(env, 20, from).map((r) => r.code).join(), `${PPR_INVALID}`, "slot already cleared");
  for (let i = 0; i < 4; i++) KUNIT_EXPECT_EQ(test, responses(env, 10 + i, from).length, 0, "queued faults still blocked");
  mmap_write_unlock(env.mm);
  await test.k.sched.wait_for(unbind, "unbind");
  env.bound = false;
  await ppr_settle(env); // the PRG responses are on the wire
  for (let i = 0; i < 4; i++) KUNIT_EXPECT_EQ(test, responses(env, 10 + i, from).map((r) => r.code).join(), `${PPR_SUCCESS}`);
  KUNIT_EXPECT_EQ(test, atomic_read(state.count), 0);
  KUNIT_EXPECT_EQ(test, state_of(env), null);
  const t = env.hw.ats_translate(env.devid, { pasid: env.pasid, va, write: false, exec: false, priv: false });
  KUNIT_EXPECT_TRUE(test, t.status === "ok" && !t.r, "no translation after unbind");
}

// ---- errors ------------------------------------------------------------------------------------

async function init_and_bind_errors(test: kunit): Promise<void> {
  const env = await apu_setup(test, { init: false });
  const { v2, pdev } = env;
  KUNIT_EXPECT_EQ(test, await v2.amd_iommu_bind_pasid(pdev, 1, env.task), -EINVAL, "device not initialised");
  KUNIT_EXPECT_EQ(test, v2.amd_iommu_set_invalid_ppr_cb(pdev, null), -EINVAL);
  KUNIT_EXPECT_EQ(test, await v2.amd_iommu_init_device(pdev, 0), -EINVAL);
  KUNIT_EXPECT_EQ(test, await v2.amd_iommu_init_device(pdev, 2 ** 20 + 1), -EINVAL);
  KUNIT_ASSERT_EQ(test, await v2.amd_iommu_init_device(pdev, TEST_PASIDS), 0);
  env.initialised = true;
  KUNIT_EXPECT_EQ(test, await v2.amd_iommu_init_device(pdev, TEST_PASIDS), -EBUSY, "already attached to a v2 domain");
  KUNIT_EXPECT_EQ(test, await v2.amd_iommu_bind_pasid(pdev, TEST_PASIDS, env.task), -EINVAL, "PASID beyond max_pasids");
  KUNIT_EXPECT_EQ(test, await v2.amd_iommu_bind_pasid(pdev, 3, test.k.current), -ENOMEM, "a kernel thread has no mm (quirk: ENOMEM)");
  KUNIT_EXPECT_EQ(test, v2.amd_iommu_set_invalid_ppr_cb(pdev, null), 0);
}

/**
 * Binding a PASID that is already bound returns -ENOMEM (a quirk), and its error path
 * unregisters the new notifier, whose release clears GCR3[pasid] — the existing binding loses
 * its translation (6.5 behaviour, reproduced).
 */
async function double_bind_quirk(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 1);
  await poke(env.mm, va, fill(4, 7));
  const req = { pasid: env.pasid, va, write: false, exec: false, priv: false };
  const before = env.hw.ats_translate(env.devid, req);
  KUNIT_ASSERT_TRUE(test, before.status === "ok" && before.r);
  KUNIT_EXPECT_EQ(test, await env.v2.amd_iommu_bind_pasid(env.pdev, env.pasid, env.task), -ENOMEM);
  const after = env.hw.ats_translate(env.devid, req);
  KUNIT_EXPECT_TRUE(test, after.status === "ok" && !after.r, "the first binding's GCR3 entry was cleared");
  KUNIT_EXPECT_FALSE(test, state_of(env)!.invalid, "while its pasid_state still looks valid");
}

export const iommu_v2_ppr_suite: kunit_suite = {
  name: "iommu_v2_ppr",
  machine: APU_TEST_MACHINE,
  test_cases: [
    KUNIT_CASE(read_and_write_through_pri),
    KUNIT_CASE(group_answered_once_after_last),
    KUNIT_CASE(last_request_first_still_waits),
    KUNIT_CASE(group_status_last_writer_wins),
    KUNIT_CASE_PARAM(response_codes, code_params),
    KUNIT_CASE(exec_request_needs_vm_exec),
    KUNIT_CASE(unknown_device_gets_no_response),
    KUNIT_CASE(unknown_pasid_invalid_untracked),
    KUNIT_CASE(exit_tears_pasid_down),
    KUNIT_CASE(unknown_request_type_dropped),
    KUNIT_CASE(reserved_bit_request_served),
    KUNIT_CASE(oom_answers_success_and_device_refaults),
    KUNIT_CASE(invalidate_one_page_vs_whole_pasid),
    KUNIT_CASE(unbind_while_faults_queued),
    KUNIT_CASE(init_and_bind_errors),
    KUNIT_CASE(double_bind_quirk),
  ],
};
