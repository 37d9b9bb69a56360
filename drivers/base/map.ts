// Mirrors drivers/base/map.c (Linux 6.8): kobj_map, the dev_t → object table behind char-device
// lookup. Ranges may overlap; lookup picks the narrowest range containing the number, as the
// kernel's list sorted by range size does.

import type { dev_t } from "../../include/linux/kdev_t.ts";

interface probe<T> {
  dev: dev_t;
  range: number;
  data: T;
}

export class kobj_map<T> {
  private probes: probe<T>[] = [];

  /** kobj_map(): `data` answers for [dev, dev + range). */
  map(dev: dev_t, range: number, data: T): void {
    const p = { dev, range, data };
    const i = this.probes.findIndex((q) => q.range >= range);
    if (i < 0) this.probes.push(p);
    else this.probes.splice(i, 0, p);
  }

  /** kobj_unmap(): forgets the entry registered for exactly [dev, dev + range). */
  unmap(dev: dev_t, range: number, data: T): void {
    const i = this.probes.findIndex((q) => q.dev === dev && q.range === range && q.data === data);
    if (i >= 0) this.probes.splice(i, 1);
  }

  /** kobj_lookup(): the object owning `dev`, or null. */
  lookup(dev: dev_t): T | null {
    for (const p of this.probes) if (dev >= p.dev && dev < p.dev + p.range) return p.data;
    return null;
  }

  get size(): number {
    return this.probes.length;
  }
}
