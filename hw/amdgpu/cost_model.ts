// kemu hardware: the GPU's cost model (not a kernel file). Engines charge virtual time from
// these figures; host speed never changes a result. Each default names the row of
// ../shared/reference/anchors.md §C it comes from; where §C has no figure for a quantity the
// entry says so and gives kemu's choice. A machine description may override any of them.

export interface GpuCostModel {
  /** SDMA copy/fill bandwidth, bytes per ns (= GB/s). */
  sdma_bytes_per_ns: number;
  /** Fixed cost of one SDMA packet beyond its data movement, ns. */
  sdma_packet_ns: number;
  /** Doorbell write to the engine starting work, ns. */
  doorbell_latency_ns: number;
  /** Shader access bandwidth to local VRAM (HBM), bytes per ns. */
  vram_bytes_per_ns: number;
  /** Shader access bandwidth to system memory over PCIe, bytes per ns. */
  pcie_bytes_per_ns: number;
  /** One TLB invalidation request until its acknowledge, ns. */
  tlb_invalidate_ns: number;
  /** A stalled (retry-faulted) access is replayed this long after it faulted, ns. */
  retry_interval_ns: number;
  /** Longest a wave keeps retrying one access before the UTCL2 turns it into a no-retry fault, ns. */
  retry_timeout_ns: number;
  /** IV written to the ring until the MSI reaches the CPU, ns. */
  ih_delivery_ns: number;
  /** One scalar ISA instruction, ns. */
  shader_instruction_ns: number;
}

export const DEFAULT_GPU_COST: Readonly<GpuCostModel> = Object.freeze({
  // §C2 "SDMA D2H bandwidth": 56 GB/s on MI300 (ROCm/rocm-systems PR #4035).
  sdma_bytes_per_ns: 56,
  // §C2 "Small-copy latency": a ~4 KiB copy takes 6 µs end to end in rocm-bandwidth-test
  // (ROCm/hip#3809); kemu charges 1 µs per packet and the rest to the doorbell below.
  sdma_packet_ns: 1_000,
  // §C2 "Small-copy latency" (ROCm/hip#3809): the remaining ~5 µs of the 6 µs small copy.
  doorbell_latency_ns: 5_000,
  // §C2 "XNACK off: managed memory stays host-resident": HBM 1228.8 GB/s on MI100 (UoB-HPC/utpx).
  vram_bytes_per_ns: 1228.8,
  // §C2 same row: PCIe 4.0 x16 31.5 GB/s (UoB-HPC/utpx).
  pcie_bytes_per_ns: 31.5,
  // §C3 "GPU TLB shootdown": 4.2 µs for one entry, 4.4 µs for a full flush (Vesely et al., ISPASS 2016).
  tlb_invalidate_ns: 4_400,
  // §C1 "Far-fault cost": 20 µs (Maxwell) to 50 µs (Kaveri) (Zheng et al., HPCA 2016); kemu
  // replays a stalled access at the low end of one far-fault round.
  retry_interval_ns: 20_000,
  // No §C figure (real UTCL2s retry forever); kemu's choice: 2 s, so an unserved fault ends.
  retry_timeout_ns: 2_000_000_000,
  // No §C figure for IV delivery alone; kemu's choice: 1 µs, well inside the 16-18 µs whole
  // GPU-fault latency of §C1 "Single GPU page-fault latency" (Wahlgren et al., MI300A).
  ih_delivery_ns: 1_000,
  // No §C figure; kemu's choice: 1 ns per scalar instruction (~1 GHz shader clock).
  shader_instruction_ns: 1,
});

export function gpu_cost_model(overrides?: Partial<GpuCostModel>): GpuCostModel {
  return { ...DEFAULT_GPU_COST, ...(overrides ?? {}) };
}
