// Mirrors lib/kstrtox.c and lib/kstrtobool (Linux 6.8): strict string-to-integer parsing as
// sysfs/procfs/debugfs writes use it. One trailing newline is allowed, nothing else; base 0
// accepts 0x.. (hex) and 0.. (octal). Overflow of the target type is -ERANGE.

import { EINVAL, ERANGE } from "../include/uapi/asm-generic/errno.ts";

/** _parse_integer() over the whole string; a number ≥ 0, or -EINVAL/-ERANGE. */
function parse_unsigned(s: string, base: number, max: number): number {
  if (s.endsWith("\n")) s = s.slice(0, -1);
  if (s.startsWith("+")) s = s.slice(1);
  if (base === 0) {
    if (/^0[xX][0-9a-fA-F]/.test(s)) {
      base = 16;
      s = s.slice(2);
    } else if (/^0[0-7]/.test(s)) base = 8;
    else base = 10;
  } else if (base === 16 && /^0[xX]/.test(s)) s = s.slice(2);
  const digits = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!digits.test(s)) return -EINVAL;
  const v = parseInt(s, base);
  return v > max ? -ERANGE : v;
}

/** kstrtoull(): an unsigned 64-bit value (JS numbers lose precision above 2^53). */
export function kstrtoull(s: string, base: number): number {
  return parse_unsigned(s, base, 2 ** 64 - 1);
}

export function kstrtouint(s: string, base: number): number {
  return parse_unsigned(s, base, 2 ** 32 - 1);
}

/** kstrtoint()/kstrtoll(): signed; returns { value } or an -errno number. */
export function kstrtoll(s: string, base: number, min = -(2 ** 63), max = 2 ** 63 - 1): { value: number } | number {
  const neg = s.startsWith("-");
  const v = parse_unsigned(neg ? s.slice(1) : s, base, neg ? -min : max);
  if (v < 0) return v;
  return { value: neg ? -v : v };
}

export function kstrtoint(s: string, base: number): { value: number } | number {
  return kstrtoll(s, base, -(2 ** 31), 2 ** 31 - 1);
}

/** kstrtobool(): y/Y/1/t/T/on → true, n/N/0/f/F/off → false, anything else -EINVAL. */
export function kstrtobool(s: string): boolean | number {
  const c = s[0];
  if (c === undefined) return -EINVAL;
  if ("yY1tT".includes(c)) return true;
  if ("nN0fF".includes(c)) return false;
  if ((c === "o" || c === "O") && s.length > 1) {
    const d = s[1]!;
    if (d === "n" || d === "N") return true;
    if (d === "f" || d === "F") return false;
  }
  return -EINVAL;
}
