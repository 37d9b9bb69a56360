// Mirrors include/linux/page_ref.h (Linux 6.8): the page reference count helpers. kemu runs one
// context at a time, so the atomic operations are plain arithmetic.

import type { page } from "./mm_types.ts";

export function page_ref_count(p: page): number {
  return p._refcount;
}
export function set_page_count(p: page, v: number): void {
  p._refcount = v;
}
/** init_page_count(): a freshly set-up page holds one reference. */
export function init_page_count(p: page): void {
  p._refcount = 1;
}
export function page_ref_add(p: page, nr: number): void {
  p._refcount += nr;
}
export function page_ref_sub(p: page, nr: number): void {
  p._refcount -= nr;
}
export function page_ref_inc(p: page): void {
  p._refcount++;
}
export function page_ref_dec(p: page): void {
  p._refcount--;
}
export function page_ref_inc_return(p: page): number {
  return ++p._refcount;
}
export function page_ref_dec_return(p: page): number {
  return --p._refcount;
}
export function page_ref_sub_and_test(p: page, nr: number): boolean {
  p._refcount -= nr;
  return p._refcount === 0;
}
export function page_ref_dec_and_test(p: page): boolean {
  return --p._refcount === 0;
}
/** page_ref_add_unless(page, nr, u): add unless the count is `u`; true if added. */
export function page_ref_add_unless(p: page, nr: number, u: number): boolean {
  if (p._refcount === u) return false;
  p._refcount += nr;
  return true;
}
/** page_ref_freeze(): succeeds only if the count is exactly `count`, leaving it 0. */
export function page_ref_freeze(p: page, count: number): boolean {
  if (p._refcount !== count) return false;
  p._refcount = 0;
  return true;
}
export function page_ref_unfreeze(p: page, count: number): void {
  p._refcount = count;
}
