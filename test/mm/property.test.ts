// Property test of the mm core against a byte-array model: random sequences of mmap (private
// and shared anonymous), munmap, mprotect, madvise(DONTNEED), fork, CPU reads and writes over a
// few processes. Every access must see exactly what the model says (or fault with the SIGSEGV
// the model predicts, at the address it predicts), and when every process has exited no page
// or page table may be left allocated.

import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { boot } from "../../kernel/boot.ts";
import { MINIMAL_MACHINE } from "../../kernel/machine_spec.ts";
import type { mm_struct } from "../../include/linux/mm_types.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import { PAGE_SIZE } from "../../include/linux/mm.ts";
import { ENOMEM } from "../../include/uapi/asm-generic/errno.ts";
import {
  PROT_NONE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MADV_DONTNEED,
} from "../../include/uapi/asm-generic/mman.ts";
import { mm_alloc, mmput, dup_mm } from "../../kernel/fork.ts";
import { vm_mmap_pgoff, sys_munmap } from "../../mm/mmap.ts";
import { sys_mprotect } from "../../mm/mprotect.ts";
import { sys_madvise } from "../../mm/madvise.ts";
import { cpu_user_read, cpu_user_write, SigError, SIGSEGV, SEGV_MAPERR, SEGV_ACCERR } from "../../arch/x86/mm/fault.ts";
import { PAGE_ALLOC } from "../../kernel/tokens.ts";

/** One page as the model sees it; shared pages are the same object in several processes. */
interface mpage {
  data: Uint8Array;
}
interface mapping {
  page: mpage;
  prot: number;
  shared: boolean;
}
interface proc {
  mm: mm_struct;
  pages: Map<number, mapping>;
}

type op =
  | { t: "mmap"; p: number; n: number; prot: number; shared: boolean }
  | { t: "munmap" | "dontneed"; p: number; pick: number; n: number }
  | { t: "mprotect"; p: number; pick: number; n: number; prot: number }
  | { t: "fork" | "exit"; p: number }
  | { t: "write"; p: number; pick: number; off: number; len: number; val: number }
  | { t: "read"; p: number; pick: number; off: number; len: number };

const protArb = fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE);
// Few processes and pages, so that operations keep meeting each other's pages.
const proc_idx = fc.nat(3);
const idx = fc.nat(7);
const opArb: fc.Arbitrary<op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant("mmap" as const), p: proc_idx, n: fc.integer({ min: 1, max: 4 }), prot: protArb, shared: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constantFrom("munmap" as const, "dontneed" as const), p: proc_idx, pick: idx, n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("mprotect" as const), p: proc_idx, pick: idx, n: fc.integer({ min: 1, max: 3 }), prot: protArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("fork" as const), p: proc_idx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("exit" as const), p: proc_idx }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant("write" as const), p: proc_idx, pick: idx, off: fc.nat(PAGE_SIZE - 1), len: fc.integer({ min: 1, max: 6000 }), val: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant("read" as const), p: proc_idx, pick: idx, off: fc.nat(PAGE_SIZE - 1), len: fc.integer({ min: 1, max: 6000 }) }) },
);

/** The fork/COW scenario, always run first as an explicit example. */
const cow_example: op[] = [
  { t: "mmap", p: 0, n: 1, prot: PROT_READ | PROT_WRITE, shared: false },
  { t: "write", p: 0, pick: 0, off: 0, len: 1, val: 5 },
  { t: "fork", p: 0 },
  { t: "write", p: 0, pick: 0, off: 0, len: 1, val: 9 },
  { t: "read", p: 1, pick: 0, off: 0, len: 1 },
];

/** Where an access lands: a mapped page of the process, or (with no pages) some unmapped one. */
function pick_addr(pr: proc, pick: number): number {
  const addrs = [...pr.pages.keys()].sort((a, b) => a - b);
  if (!addrs.length) return 0x7f0000000000;
  // Sometimes step just past a mapped page, to hit holes and edges.
  return addrs[pick % addrs.length]! + (pick % 7 === 6 ? PAGE_SIZE : 0);
}

function readable(m: mapping | undefined): boolean {
  return m !== undefined && m.prot !== PROT_NONE;
}
function writable(m: mapping | undefined): boolean {
  return m !== undefined && (m.prot & PROT_WRITE) !== 0;
}

/** The model of a CPU access: bytes before the first bad page happen, then SIGSEGV there. */
function model_access(pr: proc, addr: number, len: number, write: boolean, val: number): { bytes: number[]; sig: [number, number] | null } {
  const bytes: number[] = [];
  for (let done = 0; done < len; ) {
    const va = addr + done;
    const base = va - (va % PAGE_SIZE);
    const n = Math.min(len - done, PAGE_SIZE - (va % PAGE_SIZE));
    const m = pr.pages.get(base);
    if (!m) return { bytes, sig: [SEGV_MAPERR, va] };
    if (!(write ? writable(m) : readable(m))) return { bytes, sig: [SEGV_ACCERR, va] };
    if (write) m.page.data.fill(val, va % PAGE_SIZE, (va % PAGE_SIZE) + n);
    else bytes.push(...m.page.data.subarray(va % PAGE_SIZE, (va % PAGE_SIZE) + n));
    done += n;
  }
  return { bytes, sig: null };
}

async function as_mm<T>(k: Kernel, mm: mm_struct, fn: () => Promise<T>): Promise<{ v?: T; sig?: SigError }> {
  const t = k.current;
  t.mm = mm;
  try {
    return { v: await fn() };
  } catch (e) {
    if (e instanceof SigError) return { sig: e };
    throw e;
  } finally {
    t.mm = null;
  }
}

async function step(k: Kernel, procs: proc[], o: op): Promise<void> {
  if (!procs.length) {
    const mm = mm_alloc(k)!;
    procs.push({ mm, pages: new Map() });
  }
  const pr = procs[o.p % procs.length]!;
  switch (o.t) {
    case "mmap": {
      const flags = MAP_ANONYMOUS | (o.shared ? MAP_SHARED : MAP_PRIVATE);
      const a = await vm_mmap_pgoff(pr.mm, null, 0, o.n * PAGE_SIZE, o.prot, flags, 0);
      expect(a).toBeGreaterThan(0);
      for (let i = 0; i < o.n; i++) {
        expect(pr.pages.has(a + i * PAGE_SIZE)).toBe(false);
        pr.pages.set(a + i * PAGE_SIZE, { page: { data: new Uint8Array(PAGE_SIZE) }, prot: o.prot, shared: o.shared });
      }
      return;
    }
    case "munmap": {
      const a = pick_addr(pr, o.pick);
      expect(await sys_munmap(pr.mm, a, o.n * PAGE_SIZE)).toBe(0);
      for (let i = 0; i < o.n; i++) pr.pages.delete(a + i * PAGE_SIZE);
      return;
    }
    case "dontneed": {
      const a = pick_addr(pr, o.pick);
      let hole = false;
      for (let i = 0; i < o.n; i++) {
        const m = pr.pages.get(a + i * PAGE_SIZE);
        if (!m) hole = true;
        else if (!m.shared) m.page = { data: new Uint8Array(PAGE_SIZE) }; // private pages come back zeroed
      }
      expect(await sys_madvise(pr.mm, a, o.n * PAGE_SIZE, MADV_DONTNEED)).toBe(hole ? -ENOMEM : 0);
      return;
    }
    case "mprotect": {
      const a = pick_addr(pr, o.pick);
      let i = 0;
      // The kernel changes VMAs up to the first hole, then reports -ENOMEM.
      for (; i < o.n && pr.pages.has(a + i * PAGE_SIZE); i++) pr.pages.get(a + i * PAGE_SIZE)!.prot = o.prot;
      expect(await sys_mprotect(pr.mm, a, o.n * PAGE_SIZE, o.prot)).toBe(i === o.n ? 0 : -ENOMEM);
      return;
    }
    case "fork": {
      if (procs.length >= 4) return;
      const child = (await dup_mm(pr.mm))!;
      const pages = new Map<number, mapping>();
      for (const [a, m] of pr.pages) pages.set(a, { ...m, page: m.shared ? m.page : { data: m.page.data.slice() } });
      procs.push({ mm: child, pages });
      return;
    }
    case "exit": {
      procs.splice(procs.indexOf(pr), 1);
      await mmput(pr.mm);
      return;
    }
    case "write": {
      const a = pick_addr(pr, o.pick) + o.off;
      const want = model_access(pr, a, o.len, true, o.val);
      const got = await as_mm(k, pr.mm, () => cpu_user_write(k, a, new Uint8Array(o.len).fill(o.val)));
      check_sig(got.sig, want.sig);
      return;
    }
    case "read": {
      const a = pick_addr(pr, o.pick) + o.off;
      const want = model_access(pr, a, o.len, false, 0);
      const got = await as_mm(k, pr.mm, () => cpu_user_read(k, a, o.len));
      check_sig(got.sig, want.sig);
      if (!want.sig) expect(Array.from(got.v!)).toEqual(want.bytes);
      return;
    }
  }
}

function check_sig(got: SigError | undefined, want: [number, number] | null): void {
  if (!want) {
    expect(got).toBeUndefined();
    return;
  }
  expect(got).toBeInstanceOf(SigError);
  expect([got!.signo, got!.si_code, got!.addr]).toEqual([SIGSEGV, want[0], want[1]]);
}

describe("mm property: processes agree with a byte-array model", () => {
  it("random mmap/munmap/mprotect/madvise/fork/read/write sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40, size: "max" }), async (ops) => {
        const m = await boot({ ...MINIMAL_MACHINE, ram_size: 256 * 1024 * 1024 });
        const pa = m.symbol(PAGE_ALLOC);
        const base = pa.nr_allocated_pages();
        await m.run_kthread("model", async () => {
          const procs: proc[] = [];
          for (const o of ops) await step(m.k, procs, o);
          for (const pr of procs) await mmput(pr.mm);
        });
        await m.settle(); // the last fput of a shmem file runs from a worker
        expect(pa.nr_allocated_pages()).toBe(base);
        expect(await m.shutdown({ report_only: true, expected_splats: [] })).toEqual([]);
      }),
      { numRuns: 150, seed: 77, examples: [[cow_example]] },
    );
  }, 300_000);
});
