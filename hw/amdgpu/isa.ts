// kemu hardware: the encoding of kemu's small shader instruction set (not a kernel file; the
// reference is docs/gpu-isa.md). Every instruction is 16 bytes: dw0 = opcode [7:0], d [15:8],
// a [23:16], b [31:24] (scalar register numbers 0..15); dw1 reserved (0); dw2/dw3 = a 64-bit
// immediate (lo, hi). Branch and add immediates are signed 32-bit values in dw2.
// The assembler here is what tests and tools use to build code objects.

export const INSTR_BYTES = 16;
export const NUM_SREGS = 16;

export const Op = Object.freeze({
  S_ENDPGM: 0x00,
  S_MOV_B64: 0x01,
  S_MOV: 0x02,
  S_ADD: 0x03,
  S_ADDI: 0x04,
  S_SUB: 0x05,
  S_MUL: 0x06,
  S_MULI: 0x07,
  GLOBAL_LOAD_DWORD: 0x10,
  GLOBAL_LOAD_DWORDX2: 0x11,
  GLOBAL_STORE_DWORD: 0x12,
  GLOBAL_STORE_DWORDX2: 0x13,
  GLOBAL_ATOMIC_ADD: 0x14,
  BUFFER_COPY: 0x18,
  BUFFER_FILL: 0x19,
  S_BRANCH: 0x20,
  S_CBRANCH_LT: 0x21,
  S_CBRANCH_EQ: 0x22,
  S_CBRANCH_NE: 0x23,
  S_SLEEP: 0x30,
});

const NAMES = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));

export function op_name(op: number): string {
  return NAMES.get(op) ?? `illegal opcode 0x${op.toString(16)}`;
}

/** Initial scalar registers of a wave (the dispatch ABI of docs/gpu-isa.md). */
export const SREG_WORKGROUP_ID = 0;
export const SREG_KERNARG = 1;
export const SREG_GRID_SIZE = 2;
export const SREG_WORKGROUP_SIZE = 3;

export interface Instr {
  op: number;
  d?: number;
  a?: number;
  b?: number;
  imm?: number;
}

/** Encodes instructions into a code object (little-endian bytes). */
export function assemble(prog: readonly Instr[]): Uint8Array {
  const out = new Uint8Array(prog.length * INSTR_BYTES);
  const dv = new DataView(out.buffer);
  prog.forEach((ins, i) => {
    const o = i * INSTR_BYTES;
    dv.setUint8(o, ins.op);
    dv.setUint8(o + 1, ins.d ?? 0);
    dv.setUint8(o + 2, ins.a ?? 0);
    dv.setUint8(o + 3, ins.b ?? 0);
    const imm = ins.imm ?? 0;
    if (imm < 0) {
      dv.setInt32(o + 8, imm, true);
      dv.setInt32(o + 12, -1, true);
    } else {
      dv.setUint32(o + 8, imm % 2 ** 32, true);
      dv.setUint32(o + 12, Math.floor(imm / 2 ** 32), true);
    }
  });
  return out;
}

// Small helpers so programs read like assembly.
export const s_endpgm = (): Instr => ({ op: Op.S_ENDPGM });
export const s_mov_b64 = (d: number, imm: number): Instr => ({ op: Op.S_MOV_B64, d, imm });
export const s_mov = (d: number, a: number): Instr => ({ op: Op.S_MOV, d, a });
export const s_add = (d: number, a: number, b: number): Instr => ({ op: Op.S_ADD, d, a, b });
export const s_addi = (d: number, a: number, imm: number): Instr => ({ op: Op.S_ADDI, d, a, imm });
export const s_sub = (d: number, a: number, b: number): Instr => ({ op: Op.S_SUB, d, a, b });
export const s_mul = (d: number, a: number, b: number): Instr => ({ op: Op.S_MUL, d, a, b });
export const s_muli = (d: number, a: number, imm: number): Instr => ({ op: Op.S_MULI, d, a, imm });
export const global_load_dword = (d: number, a: number, imm = 0): Instr => ({ op: Op.GLOBAL_LOAD_DWORD, d, a, imm });
export const global_load_dwordx2 = (d: number, a: number, imm = 0): Instr => ({ op: Op.GLOBAL_LOAD_DWORDX2, d, a, imm });
export const global_store_dword = (a: number, b: number, imm = 0): Instr => ({ op: Op.GLOBAL_STORE_DWORD, a, b, imm });
export const global_store_dwordx2 = (a: number, b: number, imm = 0): Instr => ({ op: Op.GLOBAL_STORE_DWORDX2, a, b, imm });
export const global_atomic_add = (d: number, a: number, b: number, imm = 0): Instr => ({ op: Op.GLOBAL_ATOMIC_ADD, d, a, b, imm });
/** Copies s[b] bytes from address s[a] to address s[d]. */
export const buffer_copy = (d: number, a: number, b: number): Instr => ({ op: Op.BUFFER_COPY, d, a, b });
/** Fills s[b] bytes at address s[d] with the dword s[a]. */
export const buffer_fill = (d: number, a: number, b: number): Instr => ({ op: Op.BUFFER_FILL, d, a, b });
export const s_branch = (imm: number): Instr => ({ op: Op.S_BRANCH, imm });
export const s_cbranch_lt = (a: number, b: number, imm: number): Instr => ({ op: Op.S_CBRANCH_LT, a, b, imm });
export const s_cbranch_eq = (a: number, b: number, imm: number): Instr => ({ op: Op.S_CBRANCH_EQ, a, b, imm });
export const s_cbranch_ne = (a: number, b: number, imm: number): Instr => ({ op: Op.S_CBRANCH_NE, a, b, imm });
export const s_sleep = (ns: number): Instr => ({ op: Op.S_SLEEP, imm: ns });

// ---- AQL packets (the HSA architected queuing language, hsa.h) -----------------------------

export const AQL_PACKET_BYTES = 64;
export const HSA_PACKET_TYPE_VENDOR_SPECIFIC = 0;
export const HSA_PACKET_TYPE_INVALID = 1;
export const HSA_PACKET_TYPE_KERNEL_DISPATCH = 2;
export const HSA_PACKET_TYPE_BARRIER_AND = 3;

/** amd_signal_t offsets the packet processor uses. */
export const AMD_SIGNAL_VALUE = 8;
export const AMD_SIGNAL_EVENT_MAILBOX_PTR = 16;
export const AMD_SIGNAL_EVENT_ID = 24;

export interface KernelDispatch {
  workgroup_size_x: number;
  grid_size_x: number;
  kernel_object: number;
  kernarg_address: number;
  completion_signal: number;
}

/** Encodes a KERNEL_DISPATCH packet (1-D; setup = 1 dimension). */
export function aql_kernel_dispatch(p: KernelDispatch): Uint8Array {
  const b = new Uint8Array(AQL_PACKET_BYTES);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, HSA_PACKET_TYPE_KERNEL_DISPATCH, true);
  dv.setUint16(2, 1, true);
  dv.setUint16(4, p.workgroup_size_x, true);
  dv.setUint16(6, 1, true);
  dv.setUint16(8, 1, true);
  dv.setUint32(12, p.grid_size_x, true);
  dv.setUint32(16, 1, true);
  dv.setUint32(20, 1, true);
  const u64 = (off: number, v: number) => {
    dv.setUint32(off, v % 2 ** 32, true);
    dv.setUint32(off + 4, Math.floor(v / 2 ** 32), true);
  };
  u64(32, p.kernel_object);
  u64(40, p.kernarg_address);
  u64(56, p.completion_signal);
  return b;
}
