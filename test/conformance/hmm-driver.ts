// kemu conformance: the contract every HMM device driver plugged into kemu must keep, whatever
// its user ABI. A driver is described by an adapter (how to load it, and how a process asks its
// device to migrate, read and write memory); the cases below then drive it from user space and
// check what the emulator can see underneath: the CPU page tables, the pagemaps' reference
// counts, the data, and the machine's shutdown report.
//
// The contract (../shared/reference/mm.md §3–§4):
//  1. migrate to device and back — after a migration every page of the range lives in device
//     memory (a device-private entry, or a coherent page); the device sees the data; after the
//     way back every page is a present system page with the same data, and no device page is
//     left in use.
//  2. CPU fault back — a CPU access to device-private memory brings the page back (migrate_to_ram)
//     with its data, and ->page_free returns every device page.
//  3. device writes reach the CPU — through the driver's mirror (hmm_range_fault).
//  4. invalidation on munmap — a mirror never serves a stale page: after munmap and a new
//     mapping at the same address, the device sees the new memory; munmap of device-resident
//     pages frees them.
//  5. invalidation on fork — after fork, a device write on behalf of the parent does not leak
//     into the child (the COW write-protect invalidated the mirror); device-resident pages are
//     shared correctly and each process faults its own copy back.
//  6. process exit frees every device page.
//  7. unload leaves nothing: with pages still in device memory, unloading the driver migrates
//     them back (the process keeps its data) and releases all device memory; the machine shuts
//     down clean.
//
// Usage: `for (const c of hmm_driver_contract(adapter)) it(c.name, () => c.run())` — see
// test/conformance/dmirror.test.ts and docs/writing-a-driver.md.

import { boot } from "../../kernel/boot.ts";
import type { Machine } from "../../kernel/machine.ts";
import type { MachineSpec } from "../../kernel/machine_spec.ts";
import { MEMREMAP } from "../../kernel/tokens.ts";
import type { Process } from "../../tools/runtime/process.ts";
import type { mm_struct } from "../../include/linux/mm_types.ts";
import { PAGE_SIZE } from "../../include/linux/mm.ts";
import { is_device_coherent_page } from "../../include/linux/memremap.ts";
import { follow_pte, pte_unmap_unlock } from "../../mm/pgtable-generic.ts";
import { pfn_to_page } from "../../mm/sparse.ts";
import { ptep_get, pte_none, pte_present, pte_pfn } from "../../arch/x86/include/asm/pgtable.ts";
import { is_device_private_entry, is_swap_pte, pte_to_swp_entry } from "../../include/linux/swapops.ts";
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE } from "../../include/uapi/asm-generic/mman.ts";

/** A process's view of one device: the driver's mirror of that process's address space. */
export interface HmmDeviceContext {
  /** Migrate [addr, addr + npages pages) to device memory. 0 or -errno. */
  migrate_to_device(addr: number, npages: number): Promise<number>;
  /**
   * Migrate the range back to system memory explicitly. Drivers whose only way back is the
   * CPU fault leave this out; the contract then uses CPU accesses.
   */
  migrate_to_system?(addr: number, npages: number): Promise<number>;
  /** The device reads the range through its mirror (faulting in what is missing). */
  device_read(addr: number, npages: number): Promise<Uint8Array | number>;
  /** The device writes `data` (whole pages) at addr through its mirror. 0 or -errno. */
  device_write(addr: number, data: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

/** How the contract loads and talks to one driver. */
export interface HmmDriverAdapter {
  /** Shown in case names. */
  name: string;
  /** The machine the driver needs. */
  machine: MachineSpec;
  /** Load the driver as modprobe would: 0 or -errno. */
  load(machine: Machine): Promise<number>;
  /** Unload it as rmmod would: 0 or -errno. */
  unload(machine: Machine): Promise<number>;
  /** Open a device context for process `p` (for dmirror: open /dev/hmm_dmirror0). */
  open(p: Process): Promise<HmmDeviceContext>;
  /** True when the device memory is CPU-coherent (present PTEs, no CPU faults to get it back). */
  coherent?: boolean;
}

export interface ContractCase {
  name: string;
  run(): Promise<void>;
}

/** A broken promise of the contract: what was expected and what the emulator saw. */
export class ContractViolation extends Error {
  constructor(driver: string, what: string) {
    super(`${driver}: ${what}`);
    this.name = "ContractViolation";
  }
}

// ---- what the emulator sees -----------------------------------------------------------------

type Residency = "none" | "system" | "device" | "other";

function mm_of(machine: Machine, p: Process): mm_struct {
  return machine.k.sched.find_task_by_pid(p.pid)!.mm as mm_struct;
}

/** Where each page of the range lives, read from the CPU page table (in a kernel thread). */
async function residency(machine: Machine, p: Process, addr: number, npages: number): Promise<Residency[]> {
  const mm = mm_of(machine, p);
  return machine.run_kthread("hmm-contract", async () => {
    const out: Residency[] = [];
    for (let i = 0; i < npages; i++) {
      const l = follow_pte(mm, addr + i * PAGE_SIZE);
      if (!l) {
        out.push("none");
        continue;
      }
      const pte = ptep_get(machine.k, l.pte);
      pte_unmap_unlock(l.pte, l.ptl);
      if (pte_none(pte)) out.push("none");
      else if (pte_present(pte)) out.push(is_device_coherent_page(pfn_to_page(machine.k, pte_pfn(pte))) ? "device" : "system");
      else if (is_swap_pte(pte) && is_device_private_entry(pte_to_swp_entry(pte))) out.push("device");
      else out.push("other");
    }
    return out;
  });
}

/** Device pages handed out and not yet back through ->page_free, over every pagemap. */
export function device_pages_in_use(machine: Machine): number {
  // Each allocated PRIVATE/COHERENT page holds one pgmap reference; a live pgmap holds one more.
  return machine.symbol(MEMREMAP).pagemaps().reduce((n, pgmap) => n + pgmap.ref.count - (pgmap.ref.dead ? 0 : 1), 0);
}

function pattern(npages: number, seed: number): Uint8Array {
  const b = new Uint8Array(npages * PAGE_SIZE);
  for (let i = 0; i < b.length; i += 4) new DataView(b.buffer).setUint32(i, (seed * 0x9e3779b1 + i) >>> 0, true);
  return b;
}

function first_difference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

// ---- one case: a fresh machine, the driver, a process -------------------------------------------

interface Ctx {
  machine: Machine;
  p: Process;
  dev: HmmDeviceContext;
  check(cond: boolean, what: string): void;
  expect_data(got: Uint8Array | number, want: Uint8Array, what: string): void;
  expect_residency(addr: number, npages: number, want: Residency, what: string): Promise<void>;
  anon(npages: number, seed?: number): Promise<number>;
}

async function with_driver(drv: HmmDriverAdapter, body: (c: Ctx) => Promise<void>): Promise<void> {
  const machine = await boot(drv.machine);
  const check = (cond: boolean, what: string) => {
    if (!cond) throw new ContractViolation(drv.name, what);
  };
  let failure: unknown = null;
  try {
    check((await drv.load(machine)) === 0, "the driver failed to load");
    const p = await machine.spawn("hmm-contract");
    const dev = await drv.open(p);
    await body({
      machine,
      p,
      dev,
      check,
      expect_data(got, want, what) {
        check(typeof got !== "number", `${what}: the device access failed with ${String(got)}`);
        const at = first_difference(got as Uint8Array, want);
        check(at < 0, `${what}: data differs at byte ${at}`);
      },
      async expect_residency(addr, npages, want, what) {
        const r = await residency(machine, p, addr, npages);
        const bad = r.findIndex((x) => x !== want);
        check(bad < 0, `${what}: page ${bad} is ${r[bad]}, expected ${want}`);
      },
      async anon(npages, seed) {
        const addr = await p.mmap(0, npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        check(addr > 0, `mmap failed: ${addr}`);
        if (seed !== undefined) await p.write(addr, pattern(npages, seed));
        return addr;
      },
    });
  } catch (e) {
    failure = e;
  }
  // Every case ends with the machine's own verdict: modules unload, nothing leaks, no splat.
  const problems = await machine.shutdown({ report_only: true });
  if (failure) throw failure;
  check(problems.length === 0, `machine shutdown found problems:\n  ${problems.join("\n  ")}`);
}

/** Exit the process and require every device page to be back. */
async function exit_clean(c: Ctx): Promise<void> {
  await c.dev.close();
  await c.p.exit(0);
  await c.machine.settle();
  c.check(device_pages_in_use(c.machine) === 0, `${device_pages_in_use(c.machine)} device pages still in use after the process exited`);
}

const N = 16;

// ---- the contract ---------------------------------------------------------------------------

export function hmm_driver_contract(drv: HmmDriverAdapter): ContractCase[] {
  const cases: Array<[string, (c: Ctx) => Promise<void>]> = [
    ["migrate_to_device_and_back", async (c) => {
      const addr = await c.anon(N, 1);
      c.check((await c.dev.migrate_to_device(addr, N)) === 0, "migrate_to_device failed");
      await c.expect_residency(addr, N, "device", "after migrate_to_device");
      c.check(device_pages_in_use(c.machine) === N, `${device_pages_in_use(c.machine)} device pages in use, expected ${N}`);
      c.expect_data(await c.dev.device_read(addr, N), pattern(N, 1), "device read of device memory");
      if (c.dev.migrate_to_system) {
        c.check((await c.dev.migrate_to_system(addr, N)) === 0, "migrate_to_system failed");
        await c.expect_residency(addr, N, "system", "after migrate_to_system");
      } else {
        c.expect_data(await c.p.read(addr, N * PAGE_SIZE), pattern(N, 1), "CPU read after migration");
        await c.expect_residency(addr, N, "system", "after CPU faults");
      }
      c.expect_data(await c.p.read(addr, N * PAGE_SIZE), pattern(N, 1), "CPU read after the way back");
      c.check(device_pages_in_use(c.machine) === 0, "device pages still in use after the way back");
      await exit_clean(c);
    }],
    ["cpu_fault_back", async (c) => {
      const addr = await c.anon(N, 2);
      c.check((await c.dev.migrate_to_device(addr, N)) === 0, "migrate_to_device failed");
      // Every other page read, the others written: both kinds of access bring the page back.
      for (let i = 0; i < N; i++) {
        const a = addr + i * PAGE_SIZE;
        if (i % 2) await c.p.write(a, pattern(1, 100 + i));
        else c.expect_data(await c.p.read(a, PAGE_SIZE), pattern(N, 2).subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), `CPU read of page ${i}`);
      }
      if (!drv.coherent) {
        await c.expect_residency(addr, N, "system", "after CPU faults");
        c.check(device_pages_in_use(c.machine) === 0, "device pages still in use after every page faulted back");
      }
      for (let i = 1; i < N; i += 2) c.expect_data(await c.p.read(addr + i * PAGE_SIZE, PAGE_SIZE), pattern(1, 100 + i), `CPU write of page ${i}`);
      await exit_clean(c);
    }],
    ["device_write_reaches_cpu", async (c) => {
      const addr = await c.anon(N);
      c.check((await c.dev.device_write(addr, pattern(N, 3))) === 0, "device write failed");
      c.expect_data(await c.p.read(addr, N * PAGE_SIZE), pattern(N, 3), "CPU read of device-written memory");
      await exit_clean(c);
    }],
    ["invalidation_on_munmap", async (c) => {
      const addr = await c.anon(N, 4);
      c.expect_data(await c.dev.device_read(addr, N), pattern(N, 4), "first device read");
      c.check((await c.p.munmap(addr, N * PAGE_SIZE)) === 0, "munmap failed");
      // The hole is fenced with an inaccessible mapping (so no buffer lands there): the device
      // must not read it any more — a stale mirror would still serve the old pages.
      const fence = await c.p.mmap(addr, N * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      c.check(fence === addr, `mmap MAP_FIXED failed: ${fence}`);
      const gone = await c.dev.device_read(addr, N);
      c.check(typeof gone === "number" && gone < 0, "the device still reads memory that was unmapped (stale mirror)");
      c.check((await c.p.mprotect(addr, N * PAGE_SIZE, PROT_READ | PROT_WRITE)) === 0, "mprotect failed");
      await c.p.write(addr, pattern(N, 5));
      c.expect_data(await c.dev.device_read(addr, N), pattern(N, 5), "device read after munmap + new mapping (stale mirror)");
      // Device-resident pages are freed by munmap.
      c.check((await c.dev.migrate_to_device(addr, N)) === 0, "migrate_to_device failed");
      c.check((await c.p.munmap(addr, N * PAGE_SIZE)) === 0, "munmap failed");
      await c.machine.settle();
      c.check(device_pages_in_use(c.machine) === 0, "munmap left device pages in use");
      await exit_clean(c);
    }],
    ["invalidation_on_fork", async (c) => {
      const addr = await c.anon(N, 6);
      // The device maps the range writable, then the process forks (COW write-protect).
      c.check((await c.dev.device_write(addr, pattern(N, 6))) === 0, "device write failed");
      const child = await c.p.fork();
      c.check((await c.dev.device_write(addr, pattern(N, 7))) === 0, "device write after fork failed");
      c.expect_data(await child.read(addr, N * PAGE_SIZE), pattern(N, 6), "the child sees the parent's device write after fork");
      c.expect_data(await c.p.read(addr, N * PAGE_SIZE), pattern(N, 7), "the parent's own device write");
      await child.exit(0);
      // Device-resident pages across fork: each process gets its data back.
      c.check((await c.dev.migrate_to_device(addr, N)) === 0, "migrate_to_device failed");
      const child2 = await c.p.fork();
      c.expect_data(await child2.read(addr, N * PAGE_SIZE), pattern(N, 7), "child read of device-resident pages");
      await child2.write(addr, pattern(N, 8));
      c.expect_data(await c.p.read(addr, N * PAGE_SIZE), pattern(N, 7), "parent read after the child wrote its copy");
      await child2.exit(0);
      await exit_clean(c);
    }],
    ["process_exit_frees_device_memory", async (c) => {
      const addr = await c.anon(N, 9);
      c.check((await c.dev.migrate_to_device(addr, N)) === 0, "migrate_to_device failed");
      c.check(device_pages_in_use(c.machine) === N, "pages did not reach device memory");
      await exit_clean(c);
    }],
    ["unload_leaves_nothing", async (c) => {
      const addr = await c.anon(N, 10);
      c.check((await c.dev.migrate_to_device(addr, N)) === 0, "migrate_to_device failed");
      // An open device context pins the module (file_operations.owner).
      c.check((await drv.unload(c.machine)) < 0, "the driver unloaded while a device context was open");
      await c.dev.close();
      await c.machine.settle();
      c.check((await drv.unload(c.machine)) === 0, "unload failed");
      c.check(device_pages_in_use(c.machine) === 0, "device pages in use after unload");
      c.check(c.machine.symbol(MEMREMAP).pagemaps().length === 0, "pagemaps still registered after unload");
      await c.expect_residency(addr, N, "system", "after unload");
      c.expect_data(await c.p.read(addr, N * PAGE_SIZE), pattern(N, 10), "CPU read after unload");
      await c.p.exit(0);
    }],
  ];
  return cases.map(([name, fn]) => ({ name: `${drv.name}.${name}`, run: () => with_driver(drv, fn) }));
}
