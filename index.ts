// kemu: the package entry (`import { ... } from "kemu"`): the public API of ARCHITECTURE.md §10 —
// boot, Machine, MachineSpec, Process — and the user ABI constants with their kernel names.

import "reflect-metadata";

export { boot } from "./kernel/boot.ts";
export { Machine, MachineLeakError } from "./kernel/machine.ts";
export type { ShutdownOptions } from "./kernel/machine.ts";
export { DEFAULT_MACHINE, MINIMAL_MACHINE, APU_MACHINE, GiB, MiB } from "./kernel/machine_spec.ts";
export type { MachineSpec, GpuSpec, TokenOverride } from "./kernel/machine_spec.ts";
export { Process, SyscallError } from "./tools/runtime/process.ts";
// Scenarios (`kemu run my-scenario.ts`) and running them from a script.
export { defineScenario } from "./tools/scenarios/scenario.ts";
export type { Scenario, ScenarioContext } from "./tools/scenarios/scenario.ts";
export { run_scenario, sweep_seeds } from "./tools/scenarios/runner.ts";
export type { ScenarioResult, SweepReport, RunOptions } from "./tools/scenarios/runner.ts";

// UAPI: errno names, mmap/mprotect/madvise flags, open flags, ioctl encoding and struct layouts.
export * from "./include/uapi/asm-generic/errno.ts";
export * from "./include/uapi/asm-generic/mman.ts";
export * from "./include/uapi/asm-generic/fcntl.ts";
export * from "./include/uapi/asm-generic/ioctl.ts";
export {
  struct, array, flex_array, u8, u16, u32, u64, s8, s16, s32, s64, pointer, struct_size,
  layout_encode, layout_decode, layout_decode_into, ioctl_layout, register_ioctl_layout,
} from "./include/uapi/struct_layout.ts";
export type { struct_layout, field_type, value_of } from "./include/uapi/struct_layout.ts";
export { SEEK_SET, SEEK_CUR, SEEK_END } from "./include/linux/fs.ts";
// The dmirror (lib/test_hmm) ABI: HMM_DMIRROR_* requests, snapshot bytes, struct hmm_dmirror_cmd.
export * from "./include/uapi/linux/test_hmm_uapi.ts";
// The amdkfd ABI (/dev/kfd): AMDKFD_IOC_* requests, KFD_IOCTL_SVM_* attributes, argument structs.
export * from "./include/uapi/linux/kfd_ioctl.ts";
