// kemu hardware: sparse physical memory (not a kernel file). The whole 46-bit physical address
// space is addressable; a 4 KiB frame gets host backing on its first write, and reading a frame
// that was never written yields zeros without allocating anything. Backing frames are carved
// from 1 MiB slabs, views into host arenas reserved as large as the memory behind the address
// space (the host commits their pages only when written); a per-2 MiB chunk Int32Array maps
// frame → slot, so a touched frame costs its 4 KiB plus ~5 bytes of index and slab views.
// Booting a 1 TiB machine costs nothing here: no frame exists until written.

import "reflect-metadata";
import { injectable } from "tsyringe";
import { endianness } from "node:os";

export const FRAME_SIZE = 4096;
/** Frames per index chunk (2 MiB of physical space). */
const CHUNK_FRAMES = 512;
/** Frames per backing slab (1 MiB of a host ArrayBuffer arena). */
const SLAB_FRAMES = 256;
/** Largest host arena, in slabs (4 GiB, the longest typed array the host allows). */
const MAX_ARENA_SLABS = 4096;
/** 4-level x86-64: physical addresses below 2^46. */
export const PHYS_ADDR_LIMIT = 2 ** 46;

export class PhysMemError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = "PhysMemError";
  }
}

/** Counters for benchmarks and the metadata budget. */
export interface PhysMemStats {
  touched_frames: number;
  slabs: number;
  chunks: number;
  free_slots: number;
  /** Host bytes spent on indexing (chunk arrays), not on frame contents. */
  index_bytes: number;
}

@injectable()
export class PhysMem {
  /** chunk number → (slot + 1) per frame of the chunk; 0 = never written (reads as zeros). */
  private readonly chunks = new Map<number, Int32Array>();
  private readonly slabs8: Uint8Array[] = [];
  private readonly slabs32: Uint32Array[] = [];
  private arena: ArrayBuffer | null = null;
  private capacity_hint = 0;
  private arena_slabs = 0;
  private arena_used = 0;
  /** Slots of frames given back by free-page reporting, reused before growing. */
  /** Slots of dropped frames, reused first-in first-out so refilled runs stay ascending. */
  private free_slots: number[] = [];
  private free_head = 0;
  private next_slot = 0;
  private touched = 0;
  // One-entry lookup cache: page-table walks hit the same chunk over and over.
  private last_chunk_nr = -1;
  private last_chunk: Int32Array | null = null;

  constructor() {
    if (endianness() !== "LE") throw new PhysMemError("kemu physmem needs a little-endian host");
  }

  // ---- frame lookup -------------------------------------------------------------------------

  private chunk_of(pfn: number, create: boolean): Int32Array | null {
    const nr = Math.floor(pfn / CHUNK_FRAMES);
    if (nr === this.last_chunk_nr) return this.last_chunk;
    let c = this.chunks.get(nr);
    if (!c) {
      if (!create) return null;
      c = new Int32Array(CHUNK_FRAMES);
      this.chunks.set(nr, c);
    }
    this.last_chunk_nr = nr;
    this.last_chunk = c;
    return c;
  }

  /** Slot of a written frame, or -1 for a frame that reads as zeros. */
  private slot_of(pfn: number): number {
    const c = this.chunk_of(pfn, false);
    return c ? c[pfn % CHUNK_FRAMES]! - 1 : -1;
  }

  /** The slot alloc_slot() would hand out next. */
  private next_free_slot(): number {
    return this.free_head < this.free_slots.length ? this.free_slots[this.free_head]! : this.next_slot;
  }

  /** A slot for a frame; a reused one is zeroed unless the caller overwrites all of it. */
  private alloc_slot(zero: boolean): number {
    if (this.free_head < this.free_slots.length) {
      const reused = this.free_slots[this.free_head++]!;
      if (this.free_head === this.free_slots.length) {
        this.free_slots = [];
        this.free_head = 0;
      } else if (this.free_head >= 4096 && this.free_head * 2 >= this.free_slots.length) {
        this.free_slots = this.free_slots.slice(this.free_head);
        this.free_head = 0;
      }
      if (zero) {
        const off = (reused % SLAB_FRAMES) * FRAME_SIZE;
        this.slabs8[Math.floor(reused / SLAB_FRAMES)]!.fill(0, off, off + FRAME_SIZE);
      }
      return reused;
    }
    const slot = this.next_slot++;
    if (slot % SLAB_FRAMES === 0) this.add_slab();
    return slot;
  }

  /**
   * The size of the memory behind this address space (RAM, or a GPU's VRAM), so host backing
   * can be reserved as one arena: the host commits its pages only when they are written.
   */
  reserve(bytes: number): void {
    this.capacity_hint = bytes;
  }

  /**
   * A new slab, carved from a host arena: the first one as large as the reserved capacity,
   * later ones doubling (from one slab without a reservation). Few, large ArrayBuffers: each
   * new one is external memory that makes V8 collect its (large, struct-page-filled) heap.
   */
  private add_slab(): void {
    if (this.arena_used === this.arena_slabs) {
      const first = Math.max(1, Math.ceil(this.capacity_hint / (SLAB_FRAMES * FRAME_SIZE)));
      this.arena_slabs = Math.min(MAX_ARENA_SLABS, this.arena_slabs ? this.arena_slabs * 2 : first);
      this.arena = new ArrayBuffer(this.arena_slabs * SLAB_FRAMES * FRAME_SIZE);
      this.arena_used = 0;
    }
    const off = this.arena_used++ * SLAB_FRAMES * FRAME_SIZE;
    this.slabs8.push(new Uint8Array(this.arena!, off, SLAB_FRAMES * FRAME_SIZE));
    this.slabs32.push(new Uint32Array(this.arena!, off, SLAB_FRAMES * FRAME_SIZE / 4));
  }

  private slot_for_write(pfn: number, zero = true): number {
    this.check_pfn(pfn);
    const c = this.chunk_of(pfn, true)!;
    const i = pfn % CHUNK_FRAMES;
    let slot = c[i]! - 1;
    if (slot < 0) {
      slot = this.alloc_slot(zero);
      c[i] = slot + 1;
      this.touched++;
    }
    return slot;
  }

  private check_pfn(pfn: number): void {
    if (!(pfn >= 0 && pfn * FRAME_SIZE < PHYS_ADDR_LIMIT) || !Number.isInteger(pfn)) {
      throw new PhysMemError(`physical frame ${pfn} outside the 46-bit physical address space`);
    }
  }

  /** Read-only view of a frame's 4 KiB, or null if it was never written (all zeros). */
  frame(pfn: number): Uint8Array | null {
    const slot = this.slot_of(pfn);
    if (slot < 0) return null;
    const off = (slot % SLAB_FRAMES) * FRAME_SIZE;
    return this.slabs8[Math.floor(slot / SLAB_FRAMES)]!.subarray(off, off + FRAME_SIZE);
  }

  /** Writable view of a frame's 4 KiB; backs the frame if needed. */
  frame_for_write(pfn: number): Uint8Array {
    const slot = this.slot_for_write(pfn);
    const off = (slot % SLAB_FRAMES) * FRAME_SIZE;
    return this.slabs8[Math.floor(slot / SLAB_FRAMES)]!.subarray(off, off + FRAME_SIZE);
  }

  /**
   * Read-only view of up to `max` frames from `pfn` that sit back to back in one host slab (the
   * usual layout of memory written in address order), or null if `pfn` was never written. Bulk
   * copies (GPU DMA engines) move such runs with one TypedArray.set instead of one per frame.
   */
  frames(pfn: number, max: number): Uint8Array | null {
    const slot = this.slot_of(pfn);
    if (slot < 0) return null;
    const room = Math.min(max, SLAB_FRAMES - (slot % SLAB_FRAMES));
    let n = 1;
    while (n < room && this.slot_of(pfn + n) === slot + n) n++;
    const off = (slot % SLAB_FRAMES) * FRAME_SIZE;
    return this.slabs8[Math.floor(slot / SLAB_FRAMES)]!.subarray(off, off + n * FRAME_SIZE);
  }

  /**
   * Writable view of up to `max` frames from `pfn` laid out back to back in one slab, backing
   * `pfn` (and following never-written frames, while the next free slot keeps the run going).
   * `cover`: bytes from the start of `pfn`'s frame the caller will overwrite, so frames it
   * covers whole need not be zeroed first.
   */
  frames_for_write(pfn: number, max: number, cover = 0): Uint8Array {
    const slot = this.slot_for_write(pfn, cover < FRAME_SIZE);
    const room = Math.min(max, SLAB_FRAMES - (slot % SLAB_FRAMES));
    let n = 1;
    while (n < room) {
      const s = this.slot_of(pfn + n);
      if (s === slot + n || (s < 0 && this.next_free_slot() === slot + n && this.slot_for_write(pfn + n, cover < (n + 1) * FRAME_SIZE) === slot + n)) {
        n++;
        continue;
      }
      break;
    }
    const off = (slot % SLAB_FRAMES) * FRAME_SIZE;
    return this.slabs8[Math.floor(slot / SLAB_FRAMES)]!.subarray(off, off + n * FRAME_SIZE);
  }

  /** True once the frame has host backing. */
  is_backed(pfn: number): boolean {
    return this.slot_of(pfn) >= 0;
  }

  /**
   * Free page reporting (virtio-balloon style): the guest says the frame is free, the host
   * drops its backing; the frame reads as zeros again and its slot is reused.
   */
  report_free_frame(pfn: number): void {
    const c = this.chunk_of(pfn, false);
    if (!c) return;
    const i = pfn % CHUNK_FRAMES;
    const slot = c[i]! - 1;
    if (slot < 0) return;
    c[i] = 0;
    this.free_slots.push(slot);
    this.touched--;
  }

  // ---- 32-bit words (page tables, rings) --------------------------------------------------

  read32(pa: number): number {
    const pfn = Math.floor(pa / FRAME_SIZE);
    const slot = this.slot_of(pfn);
    if (slot < 0) return 0;
    const word = (slot % SLAB_FRAMES) * (FRAME_SIZE / 4) + (pa % FRAME_SIZE) / 4;
    return this.slabs32[Math.floor(slot / SLAB_FRAMES)]![word]!;
  }

  write32(pa: number, value: number): void {
    const pfn = Math.floor(pa / FRAME_SIZE);
    if (value === 0 && this.slot_of(pfn) < 0) return; // zero into an untouched frame: no backing
    const slot = this.slot_for_write(pfn);
    const word = (slot % SLAB_FRAMES) * (FRAME_SIZE / 4) + (pa % FRAME_SIZE) / 4;
    this.slabs32[Math.floor(slot / SLAB_FRAMES)]![word] = value >>> 0;
  }

  // ---- byte ranges --------------------------------------------------------------------------

  /** Copies `len` bytes at `pa` into `dst[dst_off..]`. */
  read_into(pa: number, dst: Uint8Array, dst_off = 0, len = dst.length - dst_off): void {
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const in_frame = a % FRAME_SIZE;
      const n = Math.min(len - done, FRAME_SIZE - in_frame);
      const slot = this.slot_of(Math.floor(a / FRAME_SIZE));
      if (slot >= 0) {
        // One view straight into the slab: this is the hot path of every CPU load.
        const off = (slot % SLAB_FRAMES) * FRAME_SIZE + in_frame;
        dst.set(this.slabs8[Math.floor(slot / SLAB_FRAMES)]!.subarray(off, off + n), dst_off + done);
      } else dst.fill(0, dst_off + done, dst_off + done + n);
      done += n;
    }
  }

  read(pa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.read_into(pa, out, 0, len);
    return out;
  }

  write(pa: number, src: Uint8Array, src_off = 0, len = src.length - src_off): void {
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const in_frame = a % FRAME_SIZE;
      const n = Math.min(len - done, FRAME_SIZE - in_frame);
      const slot = this.slot_for_write(Math.floor(a / FRAME_SIZE));
      const off = (slot % SLAB_FRAMES) * FRAME_SIZE + in_frame;
      const chunk = src_off + done === 0 && n === src.length ? src : src.subarray(src_off + done, src_off + done + n);
      this.slabs8[Math.floor(slot / SLAB_FRAMES)]!.set(chunk, off);
      done += n;
    }
  }

  /** memset: filling untouched frames with zeros allocates nothing. */
  fill(pa: number, len: number, value = 0): void {
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const in_frame = a % FRAME_SIZE;
      const n = Math.min(len - done, FRAME_SIZE - in_frame);
      const pfn = Math.floor(a / FRAME_SIZE);
      if (value === 0) {
        const f = this.frame(pfn);
        if (f) (f as Uint8Array).fill(0, in_frame, in_frame + n);
      } else {
        this.frame_for_write(pfn).fill(value, in_frame, in_frame + n);
      }
      done += n;
    }
  }

  /** memmove between physical ranges (overlap-safe through a bounce copy per frame). */
  copy(dst_pa: number, src_pa: number, len: number): void {
    if (dst_pa > src_pa && dst_pa < src_pa + len) {
      this.write(dst_pa, this.read(src_pa, len));
      return;
    }
    let done = 0;
    while (done < len) {
      const s = src_pa + done;
      const d = dst_pa + done;
      const n = Math.min(len - done, FRAME_SIZE - (s % FRAME_SIZE), FRAME_SIZE - (d % FRAME_SIZE));
      const src = this.frame(Math.floor(s / FRAME_SIZE));
      if (src) {
        const so = s % FRAME_SIZE;
        this.frame_for_write(Math.floor(d / FRAME_SIZE)).set(src.subarray(so, so + n), d % FRAME_SIZE);
      } else {
        this.fill(d, n, 0);
      }
      done += n;
    }
  }

  stats(): PhysMemStats {
    return {
      touched_frames: this.touched,
      slabs: this.slabs8.length,
      chunks: this.chunks.size,
      free_slots: this.free_slots.length - this.free_head,
      index_bytes: this.chunks.size * CHUNK_FRAMES * 4,
    };
  }
}
