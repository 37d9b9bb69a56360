// The main demo (`npm start`): boots the embedded default machine and tells, from the machine's
// own dmesg and counters, how device memory and system memory trade pages. It uses only the
// public API (`kemu`), as a user's script would.
//
// Act 1, HMM: a process writes data, the dmirror test driver (lib/test_hmm) migrates it into
// device-private memory, the CPU touches it and faults it back through migrate_to_ram.

import {
  boot, type Machine, type Process, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, O_RDWR,
  HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, errname,
} from "../index.ts";

const PAGE = 4096;
const NPAGES = 16;

type Say = (line: string) => void;

/** dmesg lines printed since the last call, indented, so each step shows what the kernel said. */
function dmesgSince(m: Machine, from: { n: number }, say: Say): void {
  const lines = m.dmesg();
  for (const l of lines.slice(from.n)) say(`    ${l}`);
  from.n = lines.length;
}

function pattern(npages: number): Uint8Array {
  const b = new Uint8Array(npages * PAGE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) % 251;
  return b;
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

export async function runDemo(seed: number | undefined, say: Say): Promise<number> {
  const t0 = performance.now();
  const m = await boot(seed === undefined ? undefined : { seed });
  say(`Booted "${m.name}" (seed ${m.spec.seed ?? 0}):`);
  for (const l of m.dmesg()) say(`    ${l}`);
  say("");
  await actHmm(m, say);
  const problems = await m.shutdown({ report_only: true });
  say("");
  say(`Summary: virtual time ${(m.k.ktime_get() / 1e6).toFixed(3)} ms, ${m.k.sched.nr_switches} context switches, ` +
    `${problems.length ? `${problems.length} shutdown problems` : "clean shutdown (no leaked page, lock, task or splat)"}, ` +
    `host time ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  for (const pr of problems) say(`  shutdown: ${pr}`);
  return problems.length ? 1 : 0;
}
