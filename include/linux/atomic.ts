// Mirrors include/linux/atomic.h and the generated include/linux/atomic/atomic-instrumented.h
// (Linux 6.8): atomic_t and atomic64_t with the kernel's operation names. kemu runs one context
// at a time and these never sleep, so every operation is trivially atomic; the memory-ordering
// variants (_acquire, _release, _relaxed) are the same as the fully ordered ones. atomic_t wraps
// like a 32-bit int; atomic64_t is exact only below 2^53 (a JS number), which every count in
// kemu stays under. (32-bit operators are right on atomic_t: it is an int, not an address.)

export class atomic_t {
  constructor(public counter = 0) {}
}

export class atomic64_t {
  constructor(public counter = 0) {}
}

// ---- atomic_t -----------------------------------------------------------------------------------

export function ATOMIC_INIT(i: number): atomic_t {
  return new atomic_t(i | 0);
}

export function atomic_read(v: atomic_t): number {
  return v.counter;
}

export function atomic_read_acquire(v: atomic_t): number {
  return v.counter;
}

export function atomic_set(v: atomic_t, i: number): void {
  v.counter = i | 0;
}

export function atomic_set_release(v: atomic_t, i: number): void {
  v.counter = i | 0;
}

export function atomic_add(i: number, v: atomic_t): void {
  v.counter = (v.counter + i) | 0;
}

export function atomic_sub(i: number, v: atomic_t): void {
  v.counter = (v.counter - i) | 0;
}

export function atomic_inc(v: atomic_t): void {
  v.counter = (v.counter + 1) | 0;
}

export function atomic_dec(v: atomic_t): void {
  v.counter = (v.counter - 1) | 0;
}

export function atomic_add_return(i: number, v: atomic_t): number {
  return (v.counter = (v.counter + i) | 0);
}

export function atomic_sub_return(i: number, v: atomic_t): number {
  return (v.counter = (v.counter - i) | 0);
}

export function atomic_inc_return(v: atomic_t): number {
  return (v.counter = (v.counter + 1) | 0);
}

export function atomic_dec_return(v: atomic_t): number {
  return (v.counter = (v.counter - 1) | 0);
}

export function atomic_fetch_add(i: number, v: atomic_t): number {
  const old = v.counter;
  v.counter = (old + i) | 0;
  return old;
}

export function atomic_fetch_sub(i: number, v: atomic_t): number {
  const old = v.counter;
  v.counter = (old - i) | 0;
  return old;
}

export function atomic_fetch_inc(v: atomic_t): number {
  return atomic_fetch_add(1, v);
}

export function atomic_fetch_dec(v: atomic_t): number {
  return atomic_fetch_sub(1, v);
}

export function atomic_and(i: number, v: atomic_t): void {
  v.counter &= i;
}

export function atomic_or(i: number, v: atomic_t): void {
  v.counter |= i;
}

export function atomic_xor(i: number, v: atomic_t): void {
  v.counter ^= i;
}

export function atomic_andnot(i: number, v: atomic_t): void {
  v.counter &= ~i;
}

export function atomic_fetch_and(i: number, v: atomic_t): number {
  const old = v.counter;
  v.counter = old & i;
  return old;
}

export function atomic_fetch_or(i: number, v: atomic_t): number {
  const old = v.counter;
  v.counter = old | i;
  return old;
}

export function atomic_fetch_xor(i: number, v: atomic_t): number {
  const old = v.counter;
  v.counter = old ^ i;
  return old;
}

export function atomic_fetch_andnot(i: number, v: atomic_t): number {
  const old = v.counter;
  v.counter = old & ~i;
  return old;
}

export function atomic_xchg(v: atomic_t, i: number): number {
  const old = v.counter;
  v.counter = i | 0;
  return old;
}

/** atomic_cmpxchg(): stores `n` if the value is `old`; returns the value found. */
export function atomic_cmpxchg(v: atomic_t, old: number, n: number): number {
  const cur = v.counter;
  if (cur === (old | 0)) v.counter = n | 0;
  return cur;
}

export function atomic_sub_and_test(i: number, v: atomic_t): boolean {
  return atomic_sub_return(i, v) === 0;
}

export function atomic_dec_and_test(v: atomic_t): boolean {
  return atomic_dec_return(v) === 0;
}

export function atomic_inc_and_test(v: atomic_t): boolean {
  return atomic_inc_return(v) === 0;
}

export function atomic_add_negative(i: number, v: atomic_t): boolean {
  return atomic_add_return(i, v) < 0;
}

/** atomic_fetch_add_unless(): adds `a` unless the value is `u`; returns the old value. */
export function atomic_fetch_add_unless(v: atomic_t, a: number, u: number): number {
  const old = v.counter;
  if (old !== u) v.counter = (old + a) | 0;
  return old;
}

export function atomic_add_unless(v: atomic_t, a: number, u: number): boolean {
  return atomic_fetch_add_unless(v, a, u) !== u;
}

export function atomic_inc_not_zero(v: atomic_t): boolean {
  return atomic_add_unless(v, 1, 0);
}

export function atomic_inc_unless_negative(v: atomic_t): boolean {
  if (v.counter < 0) return false;
  atomic_inc(v);
  return true;
}

export function atomic_dec_unless_positive(v: atomic_t): boolean {
  if (v.counter > 0) return false;
  atomic_dec(v);
  return true;
}

/** atomic_dec_if_positive(): decrements unless that goes negative; returns old - 1 either way. */
export function atomic_dec_if_positive(v: atomic_t): number {
  const dec = (v.counter - 1) | 0;
  if (dec >= 0) v.counter = dec;
  return dec;
}

// ---- atomic64_t ---------------------------------------------------------------------------------

export function ATOMIC64_INIT(i: number): atomic64_t {
  return new atomic64_t(i);
}

export function atomic64_read(v: atomic64_t): number {
  return v.counter;
}

export function atomic64_read_acquire(v: atomic64_t): number {
  return v.counter;
}

export function atomic64_set(v: atomic64_t, i: number): void {
  v.counter = i;
}

export function atomic64_set_release(v: atomic64_t, i: number): void {
  v.counter = i;
}

export function atomic64_add(i: number, v: atomic64_t): void {
  v.counter += i;
}

export function atomic64_sub(i: number, v: atomic64_t): void {
  v.counter -= i;
}

export function atomic64_inc(v: atomic64_t): void {
  v.counter++;
}

export function atomic64_dec(v: atomic64_t): void {
  v.counter--;
}

export function atomic64_add_return(i: number, v: atomic64_t): number {
  return (v.counter += i);
}

export function atomic64_sub_return(i: number, v: atomic64_t): number {
  return (v.counter -= i);
}

export function atomic64_inc_return(v: atomic64_t): number {
  return ++v.counter;
}

export function atomic64_dec_return(v: atomic64_t): number {
  return --v.counter;
}

export function atomic64_fetch_add(i: number, v: atomic64_t): number {
  const old = v.counter;
  v.counter = old + i;
  return old;
}

export function atomic64_fetch_sub(i: number, v: atomic64_t): number {
  const old = v.counter;
  v.counter = old - i;
  return old;
}

export function atomic64_fetch_inc(v: atomic64_t): number {
  return atomic64_fetch_add(1, v);
}

export function atomic64_fetch_dec(v: atomic64_t): number {
  return atomic64_fetch_sub(1, v);
}

export function atomic64_xchg(v: atomic64_t, i: number): number {
  const old = v.counter;
  v.counter = i;
  return old;
}

export function atomic64_cmpxchg(v: atomic64_t, old: number, n: number): number {
  const cur = v.counter;
  if (cur === old) v.counter = n;
  return cur;
}

export function atomic64_sub_and_test(i: number, v: atomic64_t): boolean {
  return atomic64_sub_return(i, v) === 0;
}

export function atomic64_dec_and_test(v: atomic64_t): boolean {
  return atomic64_dec_return(v) === 0;
}

export function atomic64_inc_and_test(v: atomic64_t): boolean {
  return atomic64_inc_return(v) === 0;
}

export function atomic64_add_negative(i: number, v: atomic64_t): boolean {
  return atomic64_add_return(i, v) < 0;
}

export function atomic64_fetch_add_unless(v: atomic64_t, a: number, u: number): number {
  const old = v.counter;
  if (old !== u) v.counter = old + a;
  return old;
}

export function atomic64_add_unless(v: atomic64_t, a: number, u: number): boolean {
  return atomic64_fetch_add_unless(v, a, u) !== u;
}

export function atomic64_inc_not_zero(v: atomic64_t): boolean {
  return atomic64_add_unless(v, 1, 0);
}

export function atomic64_dec_if_positive(v: atomic64_t): number {
  const dec = v.counter - 1;
  if (dec >= 0) v.counter = dec;
  return dec;
}
