// Mirrors drivers/gpu/drm/drm_file.c (Linux 6.8): open files of DRM minors. drm_open() (via
// the stub fops of major 226) finds the minor, creates a drm_file and calls the driver's open;
// the last close calls postclose. amdgpu keeps its per-file state (the VM) in driver_priv,
// which is what AMDKFD_IOC_ACQUIRE_VM reaches through the file descriptor.

import type { file, file_operations, inode } from "../../../include/linux/fs.ts";
import { ENODEV, ENOTTY } from "../../../include/uapi/asm-generic/errno.ts";
import { drm_minor_acquire, type drm_minor } from "./drm_drv.ts";
import { replace_fops } from "../../../fs/file_table.ts";
import type { Kernel } from "../../../kernel/kernel.ts";

export class drm_file {
  driver_priv: unknown = null;
  constructor(
    readonly minor: drm_minor,
    readonly filp: file,
  ) {}
}

/** file → drm_file (file->private_data). */
export function drm_file_of(f: file): drm_file | null {
  return f.private_data instanceof drm_file ? f.private_data : null;
}

async function drm_open(k: Kernel, inode: inode, filp: file): Promise<number> {
  const minor = drm_minor_acquire(k, inode.i_rdev);
  if (!minor || !minor.dev.registered) return -ENODEV;
  const priv = new drm_file(minor, filp);
  const drv = minor.dev.driver;
  const r = drv.open ? await drv.open(minor.dev, priv) : 0;
  if (r) return r;
  filp.private_data = priv;
  return 0;
}

async function drm_release(_inode: inode, filp: file): Promise<number> {
  const priv = drm_file_of(filp);
  if (!priv) return 0;
  const dev = priv.minor.dev;
  await dev.driver.postclose?.(dev, priv);
  filp.private_data = null;
  return 0;
}

async function drm_ioctl(filp: file, cmd: number, arg: number): Promise<number> {
  const priv = drm_file_of(filp);
  if (!priv) return -ENODEV;
  const drv = priv.minor.dev.driver;
  return drv.ioctl ? drv.ioctl(priv, cmd, arg) : -ENOTTY;
}

/** The driver-side fops every DRM file runs (drm_gem_fops / amdgpu_driver_kms_fops). */
function drm_fops(k: Kernel): file_operations {
  return {
    open: (inode, f) => drm_open(k, inode, f),
    release: drm_release,
    unlocked_ioctl: drm_ioctl,
  };
}

/** drm_stub_open(): switches the file to the DRM fops and opens it. */
export const drm_stub_fops: file_operations = {
  open: async (inode, f) => {
    const k = inode.i_sb.s_vfs.k;
    const fops = drm_fops(k);
    replace_fops(f, fops);
    return fops.open!(inode, f);
  },
};
