// Mirrors include/uapi/asm-generic/ioctl.h (Linux 6.8): the ioctl request-number encoding.
// A request packs direction (2 bits), argument size (14 bits), type (8 bits, the driver's magic
// letter) and number (8 bits). The direction bits reach bit 31, so the packing uses arithmetic:
// 32-bit operators would turn _IOR/_IOWR numbers negative, while the kernel's `cmd` is unsigned.
// The size comes from the argument's struct layout (include/uapi/struct_layout.ts); a request
// built from a layout also records the layout, so user space can marshal plain objects.

import { register_ioctl_layout, type struct_layout } from "../struct_layout.ts";

export const _IOC_NRBITS = 8;
export const _IOC_TYPEBITS = 8;
export const _IOC_SIZEBITS = 14;
export const _IOC_DIRBITS = 2;

export const _IOC_NRMASK = 2 ** _IOC_NRBITS - 1;
export const _IOC_TYPEMASK = 2 ** _IOC_TYPEBITS - 1;
export const _IOC_SIZEMASK = 2 ** _IOC_SIZEBITS - 1;
export const _IOC_DIRMASK = 2 ** _IOC_DIRBITS - 1;

export const _IOC_NRSHIFT = 0;
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;

export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;

/** The type field: a magic letter such as 'H' or 'K', or its code. */
export type ioc_type = string | number;

function type_code(type: ioc_type): number {
  return typeof type === "string" ? type.charCodeAt(0) : type;
}

/** _IOC(dir, type, nr, size): the packed, unsigned request number. */
export function _IOC(dir: number, type: ioc_type, nr: number, size: number): number {
  return (
    dir * 2 ** _IOC_DIRSHIFT +
    size * 2 ** _IOC_SIZESHIFT +
    type_code(type) * 2 ** _IOC_TYPESHIFT +
    nr * 2 ** _IOC_NRSHIFT
  );
}

function field(nr: number, shift: number, mask: number): number {
  return Math.floor(nr / 2 ** shift) % (mask + 1);
}

export function _IOC_DIR(nr: number): number {
  return field(nr, _IOC_DIRSHIFT, _IOC_DIRMASK);
}
export function _IOC_TYPE(nr: number): number {
  return field(nr, _IOC_TYPESHIFT, _IOC_TYPEMASK);
}
export function _IOC_NR(nr: number): number {
  return field(nr, _IOC_NRSHIFT, _IOC_NRMASK);
}
export function _IOC_SIZE(nr: number): number {
  return field(nr, _IOC_SIZESHIFT, _IOC_SIZEMASK);
}

/** The argument of _IOR/_IOW/_IOWR: a struct layout (its sizeof) or a plain size in bytes. */
export type ioc_arg = struct_layout | number;

function sized(dir: number, type: ioc_type, nr: number, arg: ioc_arg): number {
  const size = typeof arg === "number" ? arg : arg.size;
  const request = _IOC(dir, type, nr, size);
  if (typeof arg !== "number") register_ioctl_layout(request, arg);
  return request;
}

export function _IO(type: ioc_type, nr: number): number {
  return _IOC(_IOC_NONE, type, nr, 0);
}
export function _IOR(type: ioc_type, nr: number, arg: ioc_arg): number {
  return sized(_IOC_READ, type, nr, arg);
}
export function _IOW(type: ioc_type, nr: number, arg: ioc_arg): number {
  return sized(_IOC_WRITE, type, nr, arg);
}
export function _IOWR(type: ioc_type, nr: number, arg: ioc_arg): number {
  return sized(_IOC_READ | _IOC_WRITE, type, nr, arg);
}

// Used by drivers to decode what they were handed.
export const IOC_IN = _IOC_WRITE * 2 ** _IOC_DIRSHIFT;
export const IOC_OUT = _IOC_READ * 2 ** _IOC_DIRSHIFT;
export const IOC_INOUT = (_IOC_WRITE | _IOC_READ) * 2 ** _IOC_DIRSHIFT;
export const IOCSIZE_MASK = _IOC_SIZEMASK * 2 ** _IOC_SIZESHIFT;
export const IOCSIZE_SHIFT = _IOC_SIZESHIFT;
