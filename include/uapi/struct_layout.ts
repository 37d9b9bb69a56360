// kemu: C struct layouts for the user ABI — what the C compiler does for a UAPI header. Not a
// kernel file. A layout gives sizeof (for _IOR/_IOW/_IOWR), field offsets under the x86-64
// alignment rules, and byte encoding/decoding, so that user space (tools/runtime) can marshal a
// plain object into process memory and a driver can decode what copy_from_user() fetched.
//
//   const hmm_dmirror_cmd = struct("hmm_dmirror_cmd", { addr: u64, ptr: u64, npages: u64, ... });
//   const kfd_ioctl_svm_args = struct("kfd_ioctl_svm_args", {
//     start_addr: u64, size: u64, op: u32, nattr: u32,
//     attrs: flex_array(kfd_ioctl_svm_attribute, "nattr"),   // attrs[] (flexible array member)
//   });
//
// Integers are JS numbers; 64-bit fields are read and written as two 32-bit halves (values above
// 2^53 lose precision, see docs/fidelity.md). Negative values stored in unsigned fields wrap as in C.

export interface scalar_type {
  readonly kind: "scalar";
  readonly name: string;
  readonly size: 1 | 2 | 4 | 8;
  readonly align: number;
  readonly signed: boolean;
}

export interface array_type<E extends field_type = field_type> {
  readonly kind: "array";
  readonly elem: E;
  readonly length: number;
  readonly size: number;
  readonly align: number;
}

/** A flexible array member (`type name[]`), last in its struct; its length is another field. */
export interface flex_type<E extends field_type = field_type> {
  readonly kind: "flex";
  readonly elem: E;
  readonly count_field: string;
  readonly size: 0;
  readonly align: number;
}

export interface field_layout {
  readonly name: string;
  readonly offset: number;
  readonly type: field_type;
}

export interface struct_layout<F extends fields_spec = fields_spec> {
  readonly kind: "struct";
  readonly name: string;
  /** sizeof(struct name): fixed part with tail padding, excluding a flexible array member. */
  readonly size: number;
  readonly align: number;
  readonly fields: readonly field_layout[];
  readonly spec: F;
}

export type field_type = scalar_type | array_type | flex_type | struct_layout;
export type fields_spec = Record<string, field_type>;

/** The JS value of a field: numbers, arrays of values, nested objects. */
export type value_of<T> = T extends scalar_type
  ? number
  : T extends array_type<infer E> | flex_type<infer E>
    ? value_of<E>[]
    : T extends struct_layout<infer F>
      ? { [K in keyof F]: value_of<F[K]> }
      : never;

function scalar(name: string, size: 1 | 2 | 4 | 8, signed: boolean): scalar_type {
  return Object.freeze({ kind: "scalar", name, size, align: size, signed });
}

export const u8 = scalar("__u8", 1, false);
export const u16 = scalar("__u16", 2, false);
export const u32 = scalar("__u32", 4, false);
export const u64 = scalar("__u64", 8, false);
export const s8 = scalar("__s8", 1, true);
export const s16 = scalar("__s16", 2, true);
export const s32 = scalar("__s32", 4, true);
export const s64 = scalar("__s64", 8, true);
/** A user pointer field (`void __user *` or the __u64 that UAPI headers use for one). */
export const pointer = scalar("pointer", 8, false);

export function array<E extends field_type>(elem: E, length: number): array_type<E> {
  return Object.freeze({ kind: "array", elem, length, size: elem.size * length, align: elem.align });
}

export function flex_array<E extends field_type>(elem: E, count_field: string): flex_type<E> {
  return Object.freeze({ kind: "flex", elem, count_field, size: 0, align: elem.align });
}

function align_up(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** struct name { ... }: lays the fields out in order with natural alignment. */
export function struct<F extends fields_spec>(name: string, spec: F): struct_layout<F> {
  const fields: field_layout[] = [];
  let off = 0;
  let align = 1;
  const names = Object.keys(spec);
  names.forEach((fname, i) => {
    const type = spec[fname]!;
    if (type.kind === "flex" && i !== names.length - 1) throw new TypeError(`${name}.${fname}: flexible array must be last`);
    if (type.kind === "flex" && !(type.count_field in spec)) throw new TypeError(`${name}.${fname}: no count field ${type.count_field}`);
    off = align_up(off, type.align);
    fields.push({ name: fname, offset: off, type });
    off += type.size;
    align = Math.max(align, type.align);
  });
  return Object.freeze({ kind: "struct", name, size: align_up(off, align), align, fields: Object.freeze(fields), spec });
}

function flex_of(layout: struct_layout): field_layout | undefined {
  const last = layout.fields[layout.fields.length - 1];
  return last?.type.kind === "flex" ? last : undefined;
}

/** Number of flexible-array elements an object carries: its count field, capped by the array. */
function flex_count(f: field_layout, obj: Record<string, unknown>): number {
  const type = f.type as flex_type;
  const items = obj[f.name];
  const n = Number(obj[type.count_field] ?? 0);
  return Array.isArray(items) ? Math.min(n, items.length) : 0;
}

/** struct_size(): bytes of the struct plus `n` flexible-array elements. */
export function struct_size(layout: struct_layout, n: number): number {
  const f = flex_of(layout);
  if (!f) return layout.size;
  return Math.max(layout.size, f.offset + n * (f.type as flex_type).elem.size);
}

/** Bytes an object occupies in memory under `layout`, flexible array included. */
export function layout_size_of(layout: struct_layout, obj: object): number {
  const f = flex_of(layout);
  return f ? struct_size(layout, flex_count(f, obj as Record<string, unknown>)) : layout.size;
}

// ---- scalars ----------------------------------------------------------------------------------

function put_scalar(dv: DataView, off: number, t: scalar_type, v: unknown): void {
  const x = Number(v ?? 0);
  if (t.size === 8) {
    // Two's complement over 64 bits, built from halves so no bit operator sees the full value.
    const u = x < 0 ? 2 ** 64 + x : x;
    const hi = Math.floor(u / 2 ** 32);
    dv.setUint32(off, u - hi * 2 ** 32, true);
    dv.setUint32(off + 4, hi % 2 ** 32, true);
  } else if (t.size === 4) dv.setUint32(off, x < 0 ? 2 ** 32 + x : x % 2 ** 32, true);
  else if (t.size === 2) dv.setUint16(off, x < 0 ? 2 ** 16 + x : x % 2 ** 16, true);
  else dv.setUint8(off, x < 0 ? 2 ** 8 + x : x % 2 ** 8);
}

function get_scalar(dv: DataView, off: number, t: scalar_type): number {
  if (t.size === 8) {
    const lo = dv.getUint32(off, true);
    const hi = t.signed ? dv.getInt32(off + 4, true) : dv.getUint32(off + 4, true);
    return hi * 2 ** 32 + lo;
  }
  if (t.size === 4) return t.signed ? dv.getInt32(off, true) : dv.getUint32(off, true);
  if (t.size === 2) return t.signed ? dv.getInt16(off, true) : dv.getUint16(off, true);
  return t.signed ? dv.getInt8(off) : dv.getUint8(off);
}

// ---- encode -----------------------------------------------------------------------------------

function put(dv: DataView, off: number, t: field_type, v: unknown, n = 0): void {
  switch (t.kind) {
    case "scalar":
      return put_scalar(dv, off, t, v);
    case "array":
    case "flex": {
      const items = (v ?? []) as ArrayLike<unknown>;
      const len = t.kind === "array" ? t.length : n;
      for (let i = 0; i < len; i++) put(dv, off + i * t.elem.size, t.elem, items[i]);
      return;
    }
    case "struct":
      return put_struct(dv, off, t, (v ?? {}) as Record<string, unknown>);
  }
}

function put_struct(dv: DataView, off: number, t: struct_layout, obj: Record<string, unknown>): void {
  for (const f of t.fields) {
    const n = f.type.kind === "flex" ? flex_count(f, obj) : 0;
    put(dv, off + f.offset, f.type, obj[f.name], n);
  }
}

/** The bytes of `obj` laid out as `layout` (missing fields are zero). */
export function layout_encode(layout: struct_layout, obj: object): Uint8Array {
  const bytes = new Uint8Array(layout_size_of(layout, obj));
  put_struct(new DataView(bytes.buffer), 0, layout, obj as Record<string, unknown>);
  return bytes;
}

// ---- decode -----------------------------------------------------------------------------------

/** Reads a field; updates `into` (an existing object or array) in place when given one. */
function get(dv: DataView, off: number, t: field_type, into: unknown, n = 0): unknown {
  switch (t.kind) {
    case "scalar":
      return get_scalar(dv, off, t);
    case "array":
    case "flex": {
      const len = t.kind === "array" ? t.length : n;
      const out = Array.isArray(into) ? into : [];
      for (let i = 0; i < len; i++) out[i] = get(dv, off + i * t.elem.size, t.elem, out[i]);
      return out;
    }
    case "struct": {
      const obj = into !== null && typeof into === "object" ? (into as Record<string, unknown>) : {};
      get_struct(dv, off, t, obj);
      return obj;
    }
  }
}

function get_struct(dv: DataView, off: number, t: struct_layout, obj: Record<string, unknown>): void {
  for (const f of t.fields) {
    if (f.type.kind !== "flex") {
      obj[f.name] = get(dv, off + f.offset, f.type, obj[f.name]);
      continue;
    }
    // As many elements as both the count field and the buffer allow.
    const esz = f.type.elem.size;
    const room = esz ? Math.floor((dv.byteLength - off - f.offset) / esz) : 0;
    const n = Math.max(0, Math.min(Number(obj[f.type.count_field] ?? 0), room));
    obj[f.name] = get(dv, off + f.offset, f.type, obj[f.name], n);
  }
}

/** A fresh object holding the fields of `bytes` under `layout`. */
export function layout_decode<F extends fields_spec>(layout: struct_layout<F>, bytes: Uint8Array): value_of<struct_layout<F>> {
  const obj: Record<string, unknown> = {};
  layout_decode_into(layout, bytes, obj);
  return obj as value_of<struct_layout<F>>;
}

/** Writes the fields of `bytes` back into `obj`, keeping its identity (and nested objects'). */
export function layout_decode_into(layout: struct_layout, bytes: Uint8Array, obj: object): void {
  if (bytes.length < layout.size) throw new RangeError(`${layout.name}: ${bytes.length} bytes, sizeof is ${layout.size}`);
  get_struct(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, layout, obj as Record<string, unknown>);
}

// ---- the per-request registry (filled by the UAPI headers' _IOR/_IOW/_IOWR) -------------------

const ioctl_layouts = new Map<number, struct_layout>();

/** Records the argument layout of an ioctl request; a header defining it twice differently is a bug. */
export function register_ioctl_layout(request: number, layout: struct_layout): void {
  const old = ioctl_layouts.get(request);
  if (old && (old.name !== layout.name || old.size !== layout.size)) {
    throw new Error(`ioctl 0x${request.toString(16)}: layouts ${old.name} and ${layout.name} collide`);
  }
  ioctl_layouts.set(request, layout);
}

/** The layout of an ioctl's argument struct, if a UAPI header defined the request with one. */
export function ioctl_layout(request: number): struct_layout | undefined {
  return ioctl_layouts.get(request);
}

const total_size_ioctls = new Set<number>();

/**
 * Marks a request whose C callers put the argument's whole size, flexible array included, in
 * the request's size field (libhsakmt's AMDKFD_IOC_SVM + (attrs size << _IOC_SIZESHIFT)).
 */
export function register_ioctl_total_size(request: number): void {
  total_size_ioctls.add(request);
}

export function ioctl_takes_total_size(request: number): boolean {
  return total_size_ioctls.has(request);
}
