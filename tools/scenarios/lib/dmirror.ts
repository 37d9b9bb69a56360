// kemu tooling: what the dmirror scenarios do from user space — the calls hmm-tests.c makes
// against /dev/hmm_dmirrorN (lib/test_hmm.ts), wrapped so a scenario reads like the program.

import type { Process } from "../../runtime/process.ts";
import { O_RDWR } from "../../../include/uapi/asm-generic/fcntl.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import { PAGE_SIZE } from "../../../include/linux/mm.ts";
import { errname } from "../../../include/uapi/asm-generic/errno.ts";
import {
  HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, type hmm_dmirror_cmd_t,
} from "../../../include/uapi/linux/test_hmm_uapi.ts";

export { PAGE_SIZE };

/** One open /dev/hmm_dmirrorN of a process: the device's view of that process's memory. */
export class Dmirror {
  private constructor(
    readonly p: Process,
    readonly fd: number,
  ) {}

  static async open(p: Process, unit = 0): Promise<Dmirror> {
    const fd = await p.open(`/dev/hmm_dmirror${unit}`, O_RDWR);
    if (fd < 0) throw new Error(`open /dev/hmm_dmirror${unit}: ${fd}`);
    return new Dmirror(p, fd);
  }

  /** One HMM_DMIRROR_* request: the ioctl's return value and the command block after it. */
  async request(request: number, addr: number, npages: number, ptr = 0): Promise<{ ret: number; cmd: hmm_dmirror_cmd_t }> {
    const cmd: hmm_dmirror_cmd_t = { addr, ptr, npages, cpages: 0, faults: 0 };
    const ret = await this.p.ioctl(this.fd, request, cmd);
    return { ret, cmd };
  }

  /** One HMM_DMIRROR_* request; throws on -errno, returns the command block. */
  async cmd(request: number, addr: number, npages: number, ptr = 0): Promise<hmm_dmirror_cmd_t> {
    const { ret, cmd } = await this.request(request, addr, npages, ptr);
    if (ret) throw new Error(`dmirror ioctl 0x${request.toString(16)} at 0x${addr.toString(16)}: ${errname(ret)}`);
    return cmd;
  }

  /**
   * HMM_DMIRROR_MIGRATE_TO_DEV: the pages move into device memory; the device then reads them
   * back into `buf` (a user buffer of npages pages) so the test can check the data.
   */
  migrate_to_device(addr: number, npages: number, buf: number): Promise<hmm_dmirror_cmd_t> {
    return this.cmd(HMM_DMIRROR_MIGRATE_TO_DEV, addr, npages, buf);
  }

  /** HMM_DMIRROR_MIGRATE_TO_SYS: the pages come back to system memory. */
  migrate_to_system(addr: number, npages: number): Promise<hmm_dmirror_cmd_t> {
    return this.cmd(HMM_DMIRROR_MIGRATE_TO_SYS, addr, npages);
  }

  /** HMM_DMIRROR_READ into `buf` (a user buffer of npages pages): the device reads through its mirror. */
  read(addr: number, npages: number, buf: number): Promise<hmm_dmirror_cmd_t> {
    return this.cmd(HMM_DMIRROR_READ, addr, npages, buf);
  }

  /** HMM_DMIRROR_WRITE from `buf`: the device writes through its mirror. */
  write(addr: number, npages: number, buf: number): Promise<hmm_dmirror_cmd_t> {
    return this.cmd(HMM_DMIRROR_WRITE, addr, npages, buf);
  }

  async close(): Promise<void> {
    await this.p.close(this.fd);
  }
}

/** mmap of `npages` private anonymous pages; throws on failure. */
export async function map_anon(p: Process, npages: number): Promise<number> {
  const addr = await p.mmap(0, npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (addr < 0) throw new Error(`mmap: ${addr}`);
  return addr;
}

/** A recognisable pattern: byte i of page n is (n * 7 + i) mod 251 + `salt`. */
export function pattern(npages: number, salt = 0): Uint8Array {
  const b = new Uint8Array(npages * PAGE_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = ((Math.floor(i / PAGE_SIZE) * 7 + i) % 251 + salt) % 256;
  return b;
}

export function same_bytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
