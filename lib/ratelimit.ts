// Mirrors lib/ratelimit.c and include/linux/ratelimit_types.h (Linux 6.8): at most `burst`
// callbacks per `interval` jiffies; the count of suppressed ones is reported when a new window
// opens. Time is the machine's virtual jiffies.

import type { Kernel } from "../kernel/kernel.ts";
import { HZ } from "../kernel/time/timekeeping.ts";

export const DEFAULT_RATELIMIT_INTERVAL = 5 * HZ;
export const DEFAULT_RATELIMIT_BURST = 10;
/** Report the suppressed count only when the state is released, not on the next window. */
export const RATELIMIT_MSG_ON_RELEASE = 1;

export class ratelimit_state {
  /** Window length in jiffies; 0 disables rate limiting. */
  interval: number;
  burst: number;
  printed = 0;
  missed = 0;
  /** jiffies at the window start; -1 until the first call. */
  begin = -1;
  flags = 0;

  constructor(interval = DEFAULT_RATELIMIT_INTERVAL, burst = DEFAULT_RATELIMIT_BURST) {
    this.interval = interval;
    this.burst = burst;
  }
}

/** RATELIMIT_STATE_INIT_DISABLED: never limits until someone sets an interval. */
export function ratelimit_state_init_disabled(): ratelimit_state {
  return new ratelimit_state(0, DEFAULT_RATELIMIT_BURST);
}

/** ___ratelimit(): true if the caller may go ahead (print), false if suppressed. */
export function ___ratelimit(rs: ratelimit_state, func: string, k: Kernel): boolean {
  if (!rs.interval) return true;
  const now = k.jiffies;
  if (rs.begin < 0) rs.begin = now;
  if (rs.begin + rs.interval < now) {
    if (rs.missed && !(rs.flags & RATELIMIT_MSG_ON_RELEASE)) {
      k.pr_warn(`${func}: ${rs.missed} callbacks suppressed`);
      rs.missed = 0;
    }
    rs.begin = now;
    rs.printed = 0;
  }
  if (rs.burst && rs.burst > rs.printed) {
    rs.printed++;
    return true;
  }
  rs.missed++;
  return false;
}
