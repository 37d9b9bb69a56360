// Mirrors kernel/printk/printk.c (Linux 6.8): the log ring read by dmesg.
// Records carry virtual timestamps; each is also streamed live to the `debug` namespace
// kemu:<facility> so `DEBUG=kemu:amdgpu,kemu:kfd*` follows a run as it happens.

import createDebug from "debug";
import { inject, injectable } from "tsyringe";
import { CLOCK } from "../tokens.ts";
import { Clock } from "../time/timekeeping.ts";

export const LOGLEVEL_EMERG = 0;
export const LOGLEVEL_ALERT = 1;
export const LOGLEVEL_CRIT = 2;
export const LOGLEVEL_ERR = 3;
export const LOGLEVEL_WARNING = 4;
export const LOGLEVEL_NOTICE = 5;
export const LOGLEVEL_INFO = 6;
export const LOGLEVEL_DEBUG = 7;

export interface printk_record {
  seq: number;
  ts_nsec: number;
  level: number;
  facility: string;
  text: string;
}

type Listener = (r: printk_record) => void;

const debuggers = new Map<string, createDebug.Debugger>();
function debugFor(facility: string): createDebug.Debugger {
  let d = debuggers.get(facility);
  if (!d) {
    d = createDebug(`kemu:${facility}`);
    debuggers.set(facility, d);
  }
  return d;
}

/** "[    0.001234] " — seconds padded to 5, microseconds to 6, as the kernel prints. */
export function format_timestamp(ns: number): string {
  const sec = Math.floor(ns / 1e9);
  const usec = Math.floor((ns % 1e9) / 1e3);
  return `[${String(sec).padStart(5, " ")}.${String(usec).padStart(6, "0")}] `;
}

@injectable()
export class Printk {
  /** CONFIG_LOG_BUF_SHIFT=17 holds ~128 KiB; we keep this many records and drop the oldest. */
  static readonly LOG_BUF_RECORDS = 1 << 16;
  private ring: printk_record[] = [];
  private head = 0;
  private seq = 0;
  private listeners = new Set<Listener>();
  /** The machine name prefixes debug output, so parallel machines stay apart. */
  machine_name = "";

  constructor(@inject(CLOCK) private clock: Clock) {}

  printk(level: number, text: string, facility = "kernel"): void {
    // Most messages are one line: no regex and no split for them.
    if (text.indexOf("\n") < 0) {
      this.emit(level, text, facility);
      return;
    }
    for (const line of text.replace(/\n$/, "").split("\n")) this.emit(level, line, facility);
  }

  private emit(level: number, text: string, facility: string): void {
    const r: printk_record = { seq: this.seq++, ts_nsec: this.clock.ktime_get(), level, facility, text };
    if (this.ring.length < Printk.LOG_BUF_RECORDS) this.ring.push(r);
    else {
      this.ring[this.head] = r;
      this.head = (this.head + 1) % Printk.LOG_BUF_RECORDS;
    }
    const d = debugFor(facility);
    if (d.enabled) d("%s%s%s", this.machine_name ? `${this.machine_name} ` : "", format_timestamp(r.ts_nsec), text);
    for (const l of this.listeners) l(r);
  }

  records(): printk_record[] {
    return this.ring.slice(this.head).concat(this.ring.slice(0, this.head));
  }

  /** The lines `dmesg` prints. */
  dmesg(): string[] {
    return this.records().map((r) => format_timestamp(r.ts_nsec) + r.text);
  }

  /** Live view: every new record, until the returned function is called. */
  follow(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get next_seq(): number {
    return this.seq;
  }
}
