// kemu: the shape of lockdep's per-task held-lock entries (include/linux/lockdep_types.h),
// kept apart so the scheduler can print held locks without importing lockdep itself.

export interface HeldLock {
  /** The lock class name, e.g. "&svms->lock". */
  readonly class_name: string;
  /** The lock instance. */
  readonly instance: object;
  /** 0 exclusive, 1 shared (read), 2 recursive read. */
  readonly read: number;
  /** Where it was taken, for splats. */
  readonly acquire_ip: string;
}
