// Mirrors drivers/gpu/drm/amd/amdgpu/vega10_sdma_pkt_open.h (Linux 6.8): the SDMA packet
// opcodes and the header fields of the packets kemu's SDMA engine executes. The packets used
// here have the same layout in navi10_sdma_pkt_open.h (SDMA v5), so both sdma_v4_0 and
// sdma_v5_0 build them from this file. Header dword: op [7:0], sub_op [15:8], packet fields in
// [31:16]. These are 32-bit command words: bit operators are fine.

export const SDMA_OP_NOP = 0;
export const SDMA_OP_COPY = 1;
export const SDMA_OP_WRITE = 2;
export const SDMA_OP_INDIRECT = 4;
export const SDMA_OP_FENCE = 5;
export const SDMA_OP_TRAP = 6;
export const SDMA_OP_SEM = 7;
export const SDMA_OP_POLL_REGMEM = 8;
export const SDMA_OP_COND_EXE = 9;
export const SDMA_OP_ATOMIC = 10;
export const SDMA_OP_CONST_FILL = 11;
export const SDMA_OP_PTEPDE = 12;
export const SDMA_OP_TIMESTAMP = 13;
export const SDMA_OP_SRBM_WRITE = 14;
export const SDMA_OP_PRE_EXE = 15;

export const SDMA_SUBOP_COPY_LINEAR = 0;
export const SDMA_SUBOP_COPY_TILED = 1;
export const SDMA_SUBOP_WRITE_LINEAR = 0;

export function SDMA_PKT_HEADER_OP(x: number): number {
  return x & 0xff;
}
export function SDMA_PKT_HEADER_SUB_OP(x: number): number {
  return (x & 0xff) << 8;
}
export function SDMA_GET_OP(header: number): number {
  return header & 0xff;
}
export function SDMA_GET_SUB_OP(header: number): number {
  return (header >>> 8) & 0xff;
}

/** NOP: a burst NOP skips COUNT more dwords after the header. */
export function SDMA_PKT_NOP_HEADER_COUNT(x: number): number {
  return (x & 0x3fff) << 16;
}
export function SDMA_PKT_NOP_GET_COUNT(header: number): number {
  return (header >>> 16) & 0x3fff;
}

/** COPY_LINEAR (7 dwords): header, byte_count - 1, parameter, src lo/hi, dst lo/hi. */
export const SDMA_COPY_LINEAR_DW = 7;
/** The count field is 22 bits wide on SDMA v4 and v5: at most 4 MiB per packet. */
export const SDMA_COPY_MAX_BYTES = 0x400000;
export function SDMA_PKT_COPY_LINEAR_HEADER_TMZ(x: number): number {
  return (x & 1) << 18;
}

/** WRITE_LINEAR: header, dst lo/hi, count - 1 (dwords), then the data dwords. */
export const SDMA_WRITE_HEADER_DW = 4;

/** INDIRECT (6 dwords): header with VMID [19:16], IB base lo/hi (32-byte aligned), size (dw), CSA lo/hi. */
export const SDMA_INDIRECT_DW = 6;
export function SDMA_PKT_INDIRECT_HEADER_VMID(x: number): number {
  return (x & 0xf) << 16;
}
export function SDMA_PKT_INDIRECT_GET_VMID(header: number): number {
  return (header >>> 16) & 0xf;
}

/** FENCE (4 dwords): header with MTYPE [18:16], address lo/hi (4-byte aligned), data. */
export const SDMA_FENCE_DW = 4;
export function SDMA_PKT_FENCE_HEADER_MTYPE(x: number): number {
  return (x & 0x7) << 16;
}

/** TRAP (2 dwords): header, INT_CONTEXT [27:0] (reported in the IV's src_data[0]). */
export const SDMA_TRAP_DW = 2;
export function SDMA_PKT_TRAP_INT_CONTEXT_INT_CONTEXT(x: number): number {
  return x & 0x0fffffff;
}

/**
 * POLL_REGMEM (6 dwords): header with HDP_FLUSH [26], FUNC [30:28], MEM_POLL [31]; address
 * lo/hi (memory) or the register's byte address (dword offset << 2, lo); reference; mask;
 * interval [15:0] (in 160 ns units) and retry count [27:16] (0xfff = forever).
 */
export const SDMA_POLL_REGMEM_DW = 6;
export function SDMA_PKT_POLL_REGMEM_HEADER_HDP_FLUSH(x: number): number {
  return (x & 1) << 26;
}
export function SDMA_PKT_POLL_REGMEM_HEADER_FUNC(x: number): number {
  return (x & 7) << 28;
}
export function SDMA_PKT_POLL_REGMEM_HEADER_MEM_POLL(x: number): number {
  return (x & 1) << 31;
}
export function SDMA_PKT_POLL_REGMEM_DW5_INTERVAL(x: number): number {
  return x & 0xffff;
}
export function SDMA_PKT_POLL_REGMEM_DW5_RETRY_COUNT(x: number): number {
  return (x & 0xfff) << 16;
}
/** POLL_REGMEM FUNC: 0 always, 1 <, 2 <=, 3 ==, 4 !=, 5 >=, 6 >. */
export const SDMA_POLL_FUNC_EQ = 3;

/** CONST_FILL (5 dwords): header with FILLSIZE [31:30], dst lo/hi, data dword, byte_count - 1. */
export const SDMA_CONST_FILL_DW = 5;
export function SDMA_PKT_CONSTANT_FILL_HEADER_FILLSIZE(x: number): number {
  return (x & 3) << 30;
}

/** SRBM_WRITE (3 dwords): header with BYTE_EN [31:28], register dword offset, value. */
export const SDMA_SRBM_WRITE_DW = 3;
export function SDMA_PKT_SRBM_WRITE_HEADER_BYTE_EN(x: number): number {
  return (x & 0xf) << 28;
}

const OP_NAMES: Record<number, string> = {
  0: "NOP", 1: "COPY", 2: "WRITE", 4: "INDIRECT", 5: "FENCE", 6: "TRAP", 7: "SEM", 8: "POLL_REGMEM",
  9: "COND_EXE", 10: "ATOMIC", 11: "CONST_FILL", 12: "PTEPDE", 13: "TIMESTAMP", 14: "SRBM_WRITE", 15: "PRE_EXE",
};

/** "COPY/0x01" style name of a header's opcode, for decoded error messages. */
export function sdma_op_name(header: number): string {
  return OP_NAMES[SDMA_GET_OP(header)] ?? `op 0x${SDMA_GET_OP(header).toString(16)}`;
}
