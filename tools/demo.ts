// The main demo (`npm start`): boots the embedded default machine and tells, from the machine's
// own dmesg and counters, how device memory and system memory trade pages. It uses only the
// public API (`kemu`), as a user's script would.
//
// Act 1, HMM: a process writes data, the dmirror test driver (lib/test_hmm) migrates it into
// device-private memory, the CPU touches it and faults it back through migrate_to_ram.
// Act 2, the seed's story (amdkfd "HMM migrate ram to vram"): an SVM range is prefetched into
// the GPU's VRAM, GPU work retry-faults another range in, the CPU faults VRAM pages back, and a
// second process's VRAM demand evicts a range (on a small-VRAM machine, so pressure is cheap).
// Its steps live in tools/demo_act2.ts, which the fail-nth sweep reuses.

import {
  boot, type Machine, type Process, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, O_RDWR,
  HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, errname,
} from "../index.ts";
import { DEMO_ACT2_SIZES, PAGE, evictionScenario, pattern, seedScenario, type Act2Totals, type Say } from "./demo_act2.ts";

const NPAGES = 16;

/** dmesg lines printed since the last call, indented, so each step shows what the kernel said. */
function dmesgSince(m: Machine, from: { n: number }, say: Say): void {
  const lines = m.dmesg();
  for (const l of lines.slice(from.n)) say(`    ${l}`);
  from.n = lines.length;
}

async function residency(p: Process, fd: number, addr: number, buf: number): Promise<string> {
  const cmd = { addr, ptr: buf, npages: NPAGES, cpages: 0, faults: 0 };
  const ret = await p.ioctl(fd, HMM_DMIRROR_SNAPSHOT, cmd);
  if (ret < 0) return `snapshot failed: ${errname(ret)}`;
  const bytes = await p.read(buf, NPAGES);
  const onDevice = [...bytes].filter((b) => (b & 0xf0) === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL).length;
  return `${onDevice}/${NPAGES} pages in device memory`;
}

async function actHmm(m: Machine, say: Say): Promise<void> {
  const from = { n: m.dmesg().length };
  say("Act 1 — HMM: the kernel's dmirror driver moves a process's pages into device memory");
  const p = await m.spawn("demo");
  const addr = await p.mmap(0, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const buf = await p.mmap(0, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const data = pattern(NPAGES);
  await p.write(addr, data);
  say(`  pid ${p.pid} mapped ${NPAGES} pages at 0x${addr.toString(16)} and wrote a pattern into them`);

  say("  modprobe test_hmm");
  const ret = await m.insmod("test_hmm");
  if (ret) throw new Error(`insmod test_hmm: ${errname(ret)}`);
  dmesgSince(m, from, say);
  const fd = await p.open("/dev/hmm_dmirror0", O_RDWR);

  const cmd = { addr, ptr: buf, npages: NPAGES, cpages: 0, faults: 0 };
  const r = await p.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd);
  say(`  HMM_DMIRROR_MIGRATE_TO_DEV → ${r === 0 ? "0" : errname(r)}, cpages=${cmd.cpages}: ` +
    "migrate_vma_setup collected and unmapped the pages (MMU_NOTIFY_MIGRATE), the driver copied " +
    "them, migrate_vma_pages + migrate_vma_finalize left device-private entries in the CPU page table");
  say(`  ${await residency(p, fd, addr, buf)}`);

  const back = await p.read(addr, NPAGES * PAGE);
  const same = back.every((b, i) => b === data[i]);
  say(`  the CPU reads the range: every page faults (do_swap_page → pgmap->ops->migrate_to_ram) ` +
    `and comes back; data ${same ? "intact" : "CORRUPTED"}`);
  say(`  ${await residency(p, fd, addr, buf)}`);

  await p.close(fd);
  await p.exit(0);
  say("  rmmod test_hmm");
  await m.rmmod("test_hmm");
  dmesgSince(m, from, say);
}

async function actSeed(m: Machine, say: Say, totals: Act2Totals): Promise<void> {
  say("Act 2 — the seed's story: amdkfd migrates an SVM range between RAM and VRAM");
  await seedScenario(m, say, totals, DEMO_ACT2_SIZES);
}

/** VRAM pressure: a 64 MiB GPU, two processes whose ranges do not both fit. */
async function actEviction(say: Say, seed: number | undefined, totals: Act2Totals): Promise<number> {
  say("  VRAM pressure (a second machine whose GPU has 64 MiB of VRAM):");
  const m = await boot({
    name: "small-vram", ram_size: 2 * 1024 ** 3, gpus: [{ asic: "gfx90a", vram_size: DEMO_ACT2_SIZES.evict_vram }], iommu: false, seed: seed ?? 0,
  });
  await evictionScenario(m, say, totals, DEMO_ACT2_SIZES);
  const problems = await m.shutdown({ report_only: true });
  for (const pr of problems) say(`    shutdown: ${pr}`);
  return problems.length;
}

export async function runDemo(seed: number | undefined, say: Say): Promise<number> {
  const t0 = performance.now();
  const m = await boot(seed === undefined ? undefined : { seed });
  say(`Booted "${m.name}" (seed ${m.spec.seed ?? 0}):`);
  for (const l of m.dmesg()) say(`    ${l}`);
  say("");
  await actHmm(m, say);
  say("");
  const totals: Act2Totals = { bytes: 0, faults: 0, migrations: 0 };
  let extra: number;
  try {
    await actSeed(m, say, totals);
    extra = await actEviction(say, seed, totals);
  } catch (e) {
    say(`  act 2 stopped: ${e instanceof Error ? e.message : String(e)}`);
    extra = 1;
  }
  say(`  act 2: ${totals.faults} GPU faults served, ${totals.migrations} pages migrated, ${(totals.bytes / 1024).toFixed(0)} KiB moved`);
  const problems = await m.shutdown({ report_only: true });
  if (extra) problems.push(`act 2: ${extra} problem(s)`);
  say("");
  say(`Summary: virtual time ${(m.k.ktime_get() / 1e6).toFixed(3)} ms, ${m.k.sched.nr_switches} context switches, ` +
    `${problems.length ? `${problems.length} shutdown problems` : "clean shutdown (no leaked page, lock, task or splat)"}, ` +
    `host time ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  for (const pr of problems) say(`  shutdown: ${pr}`);
  return problems.length ? 1 : 0;
}
