// Mirrors include/linux/sysfs.h and include/linux/kobject.h (Linux 6.8): attributes, attribute
// groups, sysfs_ops and struct kobject. A show callback returns the text the kernel would
// sysfs_emit() into its PAGE_SIZE buffer; a store callback gets the written text and returns the
// bytes consumed or -errno. Either may be async (they may take sleeping locks).

import type { dentry } from "./dcache.ts";

export interface attribute {
  readonly name: string;
  readonly mode: number;
}

export interface attribute_group {
  /** A subdirectory for the group, or none to put the files in the kobject's own directory. */
  readonly name?: string;
  readonly attrs: readonly attribute[];
  /** Per-attribute mode override; 0 hides the attribute. */
  is_visible?(kobj: kobject, attr: attribute, n: number): number;
}

export interface sysfs_ops {
  show?(kobj: kobject, attr: attribute): Promise<string | number> | string | number;
  store?(kobj: kobject, attr: attribute, buf: string, count: number): Promise<number> | number;
}

/** struct kobj_attribute: the attribute type of plain kobjects. */
export interface kobj_attribute extends attribute {
  show?(kobj: kobject, attr: kobj_attribute): Promise<string | number> | string | number;
  store?(kobj: kobject, attr: kobj_attribute, buf: string, count: number): Promise<number> | number;
}

export interface kobj_type {
  release?(kobj: kobject): void;
  sysfs_ops?: sysfs_ops;
  default_groups?: readonly attribute_group[];
}

export class kobject {
  name = "";
  parent: kobject | null = null;
  ktype: kobj_type | null = null;
  /** The sysfs directory (the kernel's kernfs_node), once added. */
  sd: dentry | null = null;
  kref = 1;
  state_initialized = false;
  state_in_sysfs = false;
}
