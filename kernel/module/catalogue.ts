// kemu: the modules a machine can load by name — the /lib/modules/$(uname -r) of the emulator.
// Each subsystem issue adds its loadable drivers here (test_hmm, amdgpu, amdkfd, ...).

import type { ModuleDef } from "./main.ts";
import { test_hmm_module } from "../../lib/test_hmm.ts";

export function builtin_modules(): ModuleDef[] {
  return [test_hmm_module];
}
