// kemu tooling: what the amdkfd scenarios do from user space — a ROCm process through the
// libhsakmt-like thunk (tools/hsakmt): open /dev/kfd in an XNACK mode, register SVM ranges the
// way kfdtest's RegisterSVMRange does, and run kernels on an AQL queue.

import type { Process } from "../../runtime/process.ts";
import { HsaKmt } from "../../hsakmt/hsakmt.ts";
import { GpuDispatcher, copyDwordIsa } from "../../hsakmt/dispatch.ts";
import {
  HSAKMT_STATUS, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC, HSA_SVM_ATTR_SET_FLAGS,
  HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_HOST_ACCESS,
} from "../../hsakmt/hsakmttypes.ts";

export { HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC };
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";

export const PAGE = 4096;

function must(st: HSAKMT_STATUS, what: string): void {
  if (st !== HSAKMT_STATUS.SUCCESS) throw new Error(`${what}: HSAKMT_STATUS ${st}`);
}

/** One ROCm process with the thunk open on the first GPU node. */
export class KfdProcess {
  gpu: GpuDispatcher | null = null;

  private constructor(
    readonly p: Process,
    readonly kmt: HsaKmt,
    readonly node: number,
  ) {}

  /** hsaKmtOpenKFD and hsaKmtSetXNACKMode(xnack). */
  static async open(p: Process, xnack: 0 | 1): Promise<KfdProcess> {
    const kmt = HsaKmt.of(p);
    must(await kmt.hsaKmtOpenKFD(), "hsaKmtOpenKFD");
    const k = new KfdProcess(p, kmt, kmt.gpuNodes()[0]!);
    must(await kmt.hsaKmtSetXNACKMode(xnack), "hsaKmtSetXNACKMode");
    return k;
  }

  /** An AQL queue (hsaKmtCreateQueue) with its control memory and events. */
  async create_queue(): Promise<GpuDispatcher> {
    const d = await GpuDispatcher.create(this.kmt, this.node);
    if (typeof d === "number") throw new Error(`GpuDispatcher.create: HSAKMT_STATUS ${d}`);
    this.gpu = d;
    return d;
  }

  /** kfdtest's RegisterSVMRange: prefetch/preferred at `loc` (0: system memory), HOST_ACCESS|COHERENT, ACCESS for the GPU. */
  async register(addr: number, size: number, loc = 0): Promise<void> {
    must(await this.kmt.hsaKmtSVMSetAttr(addr, size, 4, [
      { type: HSA_SVM_ATTR_PREFETCH_LOC, value: loc },
      { type: HSA_SVM_ATTR_PREFERRED_LOC, value: loc },
      { type: HSA_SVM_ATTR_SET_FLAGS, value: HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT },
      { type: HSA_SVM_ATTR_ACCESS, value: this.node },
    ]), "hsaKmtSVMSetAttr");
  }

  /** One SVM attribute (hsaKmtSVMSetAttr with a single attribute); location values are node ids. */
  async set_attr(addr: number, size: number, type: number, value: number): Promise<void> {
    must(await this.kmt.hsaKmtSVMSetAttr(addr, size, 1, [{ type, value }]), "hsaKmtSVMSetAttr");
  }

  /** /sys/class/kfd/kfd/proc/<pid>/counters_<gpu_id>/<name>. */
  async counter(name: "faults" | "page_in" | "page_out"): Promise<number> {
    const props: { KFDGpuID?: number } = {};
    this.kmt.hsaKmtGetNodeProperties(this.node, props);
    return Number((await this.p.readFile(`/sys/class/kfd/kfd/proc/${this.p.pid}/counters_${props.KFDGpuID}/${name}`)).trim());
  }

  /** The GPU copies one dword from src to dst; throws unless the dispatch completed. */
  async gpu_copy(src: number, dst: number): Promise<void> {
    const r = await this.gpu!.run(copyDwordIsa(), { kernargs: [src, dst] });
    if (r.status !== HSAKMT_STATUS.SUCCESS || !r.completed) throw new Error(`dispatch: status ${r.status}, fault ${JSON.stringify(r.fault)}`);
  }

  async close(): Promise<void> {
    await this.gpu?.destroy();
    await this.kmt.hsaKmtCloseKFD();
    await this.p.exit();
  }
}

export async function anon(p: Process, npages: number): Promise<number> {
  const a = await p.mmap(0, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) throw new Error(`mmap: ${a}`);
  return a;
}

export async function write32(p: Process, addr: number, v: number): Promise<void> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  await p.write(addr, b);
}

export async function read32(p: Process, addr: number): Promise<number> {
  const b = await p.read(addr, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}
