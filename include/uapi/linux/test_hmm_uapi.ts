// Mirrors lib/test_hmm_uapi.h (Linux 6.8): the private user ABI of the HMM test module
// (lib/test_hmm.ts, the "dmirror" driver). Not exported in the kernel's include/uapi; kemu keeps
// it here beside the other UAPI headers so the runtime can marshal the command block.
//
// One command block serves every request: the device accesses `npages` pages at user address
// `addr` and copies data (or, for SNAPSHOT, one byte per page) to or from the user buffer `ptr`.

import { _IOWR } from "../asm-generic/ioctl.ts";
import { struct, u64 } from "../struct_layout.ts";

/**
 * struct hmm_dmirror_cmd:
 * - addr   (in)  user address the device reads or writes
 * - ptr    (in)  user buffer the data (or snapshot bytes) is copied to or from
 * - npages (in)  number of pages
 * - cpages (out) number of pages handled
 * - faults (out) number of device page-fault rounds taken
 */
export const hmm_dmirror_cmd = struct("hmm_dmirror_cmd", {
  addr: u64,
  ptr: u64,
  npages: u64,
  cpages: u64,
  faults: u64,
});

/** The plain object user space passes to ioctl() for every HMM_DMIRROR_* request. */
export interface hmm_dmirror_cmd_t {
  addr: number;
  ptr: number;
  npages: number;
  cpages: number;
  faults: number;
}

// Request numbers: magic 'H', each _IOWR with the command block (registers its layout too).
export const HMM_DMIRROR_READ = _IOWR("H", 0x00, hmm_dmirror_cmd);
export const HMM_DMIRROR_WRITE = _IOWR("H", 0x01, hmm_dmirror_cmd);
export const HMM_DMIRROR_MIGRATE_TO_DEV = _IOWR("H", 0x02, hmm_dmirror_cmd);
export const HMM_DMIRROR_MIGRATE_TO_SYS = _IOWR("H", 0x03, hmm_dmirror_cmd);
export const HMM_DMIRROR_SNAPSHOT = _IOWR("H", 0x04, hmm_dmirror_cmd);
export const HMM_DMIRROR_EXCLUSIVE = _IOWR("H", 0x05, hmm_dmirror_cmd);
export const HMM_DMIRROR_CHECK_EXCLUSIVE = _IOWR("H", 0x06, hmm_dmirror_cmd);
export const HMM_DMIRROR_RELEASE = _IOWR("H", 0x07, hmm_dmirror_cmd);
/**
 * Newer kernels (THP-era dmirror): set per-mirror flags from `npages`. The 6.8 driver kemu
 * mirrors does not know this request and answers -EINVAL; the selftests that use it need THP.
 */
export const HMM_DMIRROR_FLAGS = _IOWR("H", 0x08, hmm_dmirror_cmd);
/** HMM_DMIRROR_FLAGS bit: make large-folio device allocations fail. */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1 << 0;

/*
 * The bytes HMM_DMIRROR_SNAPSHOT writes to `ptr`, one per page: a kind (none, zero page,
 * device-private or device-coherent page, local or remote) OR-ed with the CPU permission
 * (READ or WRITE) and the CPU mapping level (PMD or PUD); ERROR when no mirror entry can exist.
 */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;
export const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40;
export const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50;

// The zone-device type of each dmirror device (0 is reserved to catch an unset field).
export const HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1;
export const HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2;
