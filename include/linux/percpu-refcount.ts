// Mirrors include/linux/percpu-refcount.h and lib/percpu-refcount.c (Linux 6.8): a reference
// count that can be killed. kemu has one CPU, so the per-CPU counters collapse into one number;
// the observable rules stay: tryget_live fails once killed, release runs when a killed ref
// reaches zero, and kill drops the initial reference.

export type percpu_ref_func_t = (ref: percpu_ref) => void;

export class percpu_ref {
  count = 0;
  dead = false;
  release: percpu_ref_func_t | null = null;
  /** Runs once the kill has taken effect (percpu_ref_kill_and_confirm). */
  confirm_kill: percpu_ref_func_t | null = null;
}

/** percpu_ref_init(): live, with one initial reference. */
export function percpu_ref_init(ref: percpu_ref, release: percpu_ref_func_t): number {
  ref.count = 1;
  ref.dead = false;
  ref.release = release;
  return 0;
}

export function percpu_ref_exit(ref: percpu_ref): void {
  ref.release = null;
}

export function percpu_ref_get_many(ref: percpu_ref, nr: number): void {
  ref.count += nr;
}

export function percpu_ref_get(ref: percpu_ref): void {
  ref.count++;
}

/** percpu_ref_tryget(): succeeds while the count is non-zero, even after kill. */
export function percpu_ref_tryget(ref: percpu_ref): boolean {
  if (ref.count === 0) return false;
  ref.count++;
  return true;
}

/** percpu_ref_tryget_live(): fails once the ref is being killed. */
export function percpu_ref_tryget_live(ref: percpu_ref): boolean {
  if (ref.dead || ref.count === 0) return false;
  ref.count++;
  return true;
}

export function percpu_ref_put_many(ref: percpu_ref, nr: number): void {
  ref.count -= nr;
  if (ref.count < 0) throw new Error("percpu_ref: count underflow");
  if (ref.count === 0) ref.release?.(ref);
}

export function percpu_ref_put(ref: percpu_ref): void {
  percpu_ref_put_many(ref, 1);
}

/** percpu_ref_kill(): no new live references; drops the initial one. */
export function percpu_ref_kill(ref: percpu_ref): void {
  if (ref.dead) return;
  ref.dead = true;
  percpu_ref_put(ref);
}

export function percpu_ref_is_dying(ref: percpu_ref): boolean {
  return ref.dead;
}

export function percpu_ref_is_zero(ref: percpu_ref): boolean {
  return ref.count === 0;
}

/** percpu_ref_reinit() / percpu_ref_resurrect(): live again with one reference. */
export function percpu_ref_resurrect(ref: percpu_ref): void {
  ref.dead = false;
  ref.count++;
}
