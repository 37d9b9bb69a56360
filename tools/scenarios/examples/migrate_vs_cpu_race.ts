// An example scenario file for `kemu run`: a device migration racing with CPU stores from a
// second thread of the same process. Which pages the migration collects depends on the
// interleaving, so sweeping seeds shows the different outcomes:
//
//   npx kemu run tools/scenarios/examples/migrate_vs_cpu_race.ts --seeds 32
//   npx kemu run tools/scenarios/examples/migrate_vs_cpu_race.ts --seed 5 --trace out/
//
// A scenario file default-exports defineScenario({...}) (or just the async run function). It
// drives the machine from user space through ctx.spawn() processes; ctx.study() marks the
// window the trace should show; ctx.check() states what must hold; the value run() returns is
// part of the run's observable behaviour that seed sweeps compare.

import { defineScenario } from "../scenario.ts";
import { Dmirror, PAGE_SIZE, map_anon, pattern } from "../lib/dmirror.ts";
import { HMM_DMIRROR_MIGRATE_TO_DEV } from "../../../include/uapi/linux/test_hmm_uapi.ts";
import { errname } from "../../../include/uapi/asm-generic/errno.ts";

const NPAGES = 8;

export default defineScenario({
  name: "migrate-vs-cpu-race",
  title: "dmirror migration racing with CPU stores",
  machine: "dmirror",
  async run(ctx) {
    await ctx.insmod("test_hmm");
    const p = await ctx.spawn("racer");
    const addr = await map_anon(p, NPAGES);
    await p.write(addr, pattern(NPAGES));
    const buf = await map_anon(p, NPAGES);
    const dev = await Dmirror.open(p);
    // Two calls in flight at once: the runtime runs the second on another thread of the process.
    const [{ ret, cmd }] = await ctx.study("migration vs. stores", () => Promise.all([
      dev.request(HMM_DMIRROR_MIGRATE_TO_DEV, addr, NPAGES, buf),
      p.write(addr + 3 * PAGE_SIZE, new Uint8Array(2 * PAGE_SIZE).fill(0x5a)),
    ]));
    // The driver reads the range back through its mirror after migrating: when a store pulled
    // a page back first, that read finds no device page and the ioctl fails with -ENOENT.
    ctx.note(`MIGRATE_TO_DEV returned ${ret ? errname(ret) : 0}, cpages ${cmd.cpages}`);
    const after = await p.read(addr + 3 * PAGE_SIZE, 2 * PAGE_SIZE);
    ctx.check(after.every((b) => b === 0x5a), "the stores survive the migration");
    await dev.close();
    await p.exit();
    return { ret: ret ? errname(ret) : 0, cpages: cmd.cpages };
  },
});
