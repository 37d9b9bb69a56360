// Mirrors kernel/time/timekeeping.c (Linux 6.8): the machine's monotonic clock.
// Time is virtual: it moves only when the scheduler idles up to the next timer, when hardware
// charges a cost, or when code busy-waits (udelay). Host speed never changes it.

export const NSEC_PER_USEC = 1_000;
export const NSEC_PER_MSEC = 1_000_000;
export const NSEC_PER_SEC = 1_000_000_000;
/** CONFIG_HZ=250, the common x86 distribution setting. */
export const HZ = 250;
const NSEC_PER_JIFFY = NSEC_PER_SEC / HZ;

export class Clock {
  /** Nanoseconds since boot. */
  private ns = 0;

  ktime_get(): number {
    return this.ns;
  }

  ktime_get_ns(): number {
    return this.ns;
  }

  get jiffies(): number {
    return Math.floor(this.ns / NSEC_PER_JIFFY);
  }

  /** Moves time forward; time never goes back. */
  advance_to(ns: number): void {
    if (ns > this.ns) this.ns = ns;
  }

  advance(delta_ns: number): void {
    if (delta_ns > 0) this.ns += delta_ns;
  }
}

export function msecs_to_jiffies(ms: number): number {
  return Math.ceil((ms * NSEC_PER_MSEC) / NSEC_PER_JIFFY);
}

export function jiffies_to_msecs(j: number): number {
  return (j * NSEC_PER_JIFFY) / NSEC_PER_MSEC;
}

export function jiffies_to_nsecs(j: number): number {
  return j * NSEC_PER_JIFFY;
}

/** include/linux/jiffies.h: time_after(a, b) is true when a is later than b. */
export function time_after(a: number, b: number): boolean {
  return a > b;
}

export function time_before(a: number, b: number): boolean {
  return a < b;
}
