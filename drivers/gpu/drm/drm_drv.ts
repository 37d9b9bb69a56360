// Mirrors drivers/gpu/drm/drm_drv.c (Linux 6.8), reduced to render nodes: a DRM device
// registers a render minor (128 + n) on char major 226 in class "drm", whose /dev node is
// /dev/dri/renderD<minor>. Opening it runs the driver's open with a new drm_file (drm_file.ts).
// The drm core's state (class, major, minors) is per machine.

import type { Kernel } from "../../../kernel/kernel.ts";
import type { class_, device, DriverCore } from "../../base/core.ts";
import type { CharDevices } from "../../../fs/char_dev.ts";
import { MKDEV, MINOR } from "../../../include/linux/kdev_t.ts";
import { ENOSPC } from "../../../include/uapi/asm-generic/errno.ts";
import { drm_stub_fops, type drm_file } from "./drm_file.ts";

export const DRM_MAJOR = 226;
export const DRM_MINOR_PRIMARY = 0;
export const DRM_MINOR_RENDER = 2;
const RENDER_BASE = 128;

export interface drm_driver {
  name: string;
  desc: string;
  /** THIS_MODULE */
  owner?: string;
  open?(dev: drm_device, file: drm_file): Promise<number>;
  postclose?(dev: drm_device, file: drm_file): Promise<void>;
  /** The driver's DRM ioctls (kemu: none are modelled; -ENOTTY for all). */
  ioctl?(file: drm_file, cmd: number, arg: number): Promise<number>;
}

export class drm_minor {
  kdev: device | null = null;
  constructor(
    readonly dev: drm_device,
    readonly index: number,
    readonly type: number,
  ) {}
}

export class drm_device {
  render: drm_minor | null = null;
  registered = false;
  dev_private: unknown = null;
  constructor(
    readonly k: Kernel,
    readonly driver: drm_driver,
    /** The parent device (the PCI function). */
    readonly dev: device,
  ) {}
}

interface drm_core {
  cls: class_;
  minors: Map<number, drm_minor>;
  core: DriverCore;
  chrdev: CharDevices;
}

const cores = new WeakMap<Kernel, drm_core>();

/** drm_core_init(): class "drm" and major 226, on first use in a machine. */
function drm_core_get(k: Kernel, core: DriverCore, chrdev: CharDevices): drm_core | number {
  const c = cores.get(k);
  if (c) return c;
  const cls = core.class_create("drm", (dev) => ({ name: `dri/${dev.dev_name()}` }));
  if (typeof cls === "number") return cls;
  const r = chrdev.register_chrdev(DRM_MAJOR, "drm", drm_stub_fops);
  if (r < 0) return r;
  const created: drm_core = { cls, minors: new Map(), core, chrdev };
  cores.set(k, created);
  return created;
}

/** The minor registered for a device number (drm_minor_acquire). */
export function drm_minor_acquire(k: Kernel, devt: number): drm_minor | null {
  return cores.get(k)?.minors.get(MINOR(devt)) ?? null;
}

/** drm_dev_alloc() */
export function drm_dev_alloc(k: Kernel, driver: drm_driver, parent: device): drm_device {
  return new drm_device(k, driver, parent);
}

/** drm_dev_register(): the render node appears as /dev/dri/renderD<128+n>. */
export async function drm_dev_register(ddev: drm_device, core: DriverCore, chrdev: CharDevices): Promise<number> {
  const c = drm_core_get(ddev.k, core, chrdev);
  if (typeof c === "number") return c;
  let index = RENDER_BASE;
  while (c.minors.has(index)) index++;
  if (index >= RENDER_BASE + 64) return -ENOSPC;
  const minor = new drm_minor(ddev, index, DRM_MINOR_RENDER);
  const kdev = await core.device_create(c.cls, ddev.dev, MKDEV(DRM_MAJOR, index), minor, `renderD${index}`);
  if (typeof kdev === "number") return kdev;
  minor.kdev = kdev;
  c.minors.set(index, minor);
  ddev.render = minor;
  ddev.registered = true;
  ddev.k.pr_info(`[drm] Initialized ${ddev.driver.name} 3.57.0 for ${ddev.dev.dev_name()} on minor ${index}`);
  return 0;
}

/** drm_dev_unregister(): the node goes; files already open keep their drm_file. */
export async function drm_dev_unregister(ddev: drm_device): Promise<void> {
  const c = cores.get(ddev.k);
  const minor = ddev.render;
  if (!c || !minor) return;
  await c.core.device_destroy(c.cls, MKDEV(DRM_MAJOR, minor.index));
  c.minors.delete(minor.index);
  ddev.render = null;
  ddev.registered = false;
}

export function drm_dev_is_unplugged(ddev: drm_device): boolean {
  return !ddev.registered;
}
