// Mirrors kernel/time/timer.c and kernel/time/hrtimer.c (Linux 6.8): timers on virtual time.
// One ordered queue serves timer_list, hrtimers and hardware completions; callbacks run in
// atomic context (softirq for timers, "hw" for device models) when the scheduler reaches them.

import { inject, injectable } from "tsyringe";
import { CLOCK } from "../tokens.ts";
import { Clock } from "./timekeeping.ts";

export type TimerContext = "softirq" | "hw";

export class timer_list {
  /** Absolute expiry in ns of virtual time. */
  expires = 0;
  /** Position in the queue's heap, -1 when not pending. */
  heap_index = -1;
  seq = 0;

  constructor(
    public function_: (t: timer_list) => void,
    public name: string,
    public context: TimerContext = "softirq",
  ) {}
}

/** A binary min-heap on (expires, seq): equal expiries fire in arming order, so runs repeat. */
@injectable()
export class TimerBase {
  private heap: timer_list[] = [];
  private seq = 0;

  constructor(@inject(CLOCK) private clock: Clock) {}

  get pending_count(): number {
    return this.heap.length;
  }

  next_expiry(): number {
    return this.heap.length ? this.heap[0]!.expires : Infinity;
  }

  timer_pending(t: timer_list): boolean {
    return t.heap_index >= 0;
  }

  /** mod_timer(): (re)arms at an absolute time; returns true if it was pending. */
  mod_timer(t: timer_list, expires_ns: number): boolean {
    const was = this.del_timer(t);
    t.expires = Math.max(expires_ns, this.clock.ktime_get());
    t.seq = this.seq++;
    t.heap_index = this.heap.length;
    this.heap.push(t);
    this.up(t.heap_index);
    return was;
  }

  add_timer_in(t: timer_list, delta_ns: number): void {
    this.mod_timer(t, this.clock.ktime_get() + Math.max(0, delta_ns));
  }

  del_timer(t: timer_list): boolean {
    const i = t.heap_index;
    if (i < 0) return false;
    const last = this.heap.pop()!;
    if (i < this.heap.length) {
      this.heap[i] = last;
      last.heap_index = i;
      this.down(i);
      this.up(last.heap_index);
    }
    t.heap_index = -1;
    return true;
  }

  /** Removes and returns the earliest timer if it is due at the current time. */
  pop_due(): timer_list | null {
    const top = this.heap[0];
    if (!top || top.expires > this.clock.ktime_get()) return null;
    this.del_timer(top);
    return top;
  }

  describe_pending(): string[] {
    return [...this.heap].sort((a, b) => a.expires - b.expires || a.seq - b.seq).map((t) => `${t.name}@${t.expires}`);
  }

  private less(a: timer_list, b: timer_list): boolean {
    return a.expires < b.expires || (a.expires === b.expires && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    a.heap_index = j;
    b.heap_index = i;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = Math.floor((i - 1) / 2);
      if (!this.less(this.heap[i]!, this.heap[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(this.heap[l]!, this.heap[m]!)) m = l;
      if (r < n && this.less(this.heap[r]!, this.heap[m]!)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
