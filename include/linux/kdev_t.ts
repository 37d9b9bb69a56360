// Mirrors include/linux/kdev_t.h (Linux 6.8): the kernel's dev_t, 12-bit major and 20-bit minor.
// Arithmetic instead of shifts keeps majors above 2047 positive.

export type dev_t = number;

export const MINORBITS = 20;
export const MINORMASK = 2 ** MINORBITS - 1;

export function MKDEV(ma: number, mi: number): dev_t {
  return ma * 2 ** MINORBITS + mi;
}
export function MAJOR(dev: dev_t): number {
  return Math.floor(dev / 2 ** MINORBITS);
}
export function MINOR(dev: dev_t): number {
  return dev % 2 ** MINORBITS;
}

/** print_dev_t(): "major:minor", as /sys/.../dev shows it. */
export function format_dev_t(dev: dev_t): string {
  return `${MAJOR(dev)}:${MINOR(dev)}`;
}
