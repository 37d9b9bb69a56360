// kemu: the registry of selftest programs (cf. the TEST_PROGS of tools/testing/selftests/*/
// Makefile). Every file under test/selftests/** is imported and each exported KselftestProgram is
// registered, in file-path order; its directory ("kernel", "mm") comes from the file's path. A
// file that fails to import becomes a program whose one test fails with the error.

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { KselftestProgram, TEST, kselftest } from "../../tools/testing/selftests/kselftest_harness.ts";
import { describeImportError, discoverModules, fileTestName } from "../harness/discover.ts";

function importFailure(rel: string, error: unknown): KselftestProgram {
  const prog = kselftest(fileTestName(rel.split("/").pop()!));
  TEST(prog, "import", () => {
    throw new Error(`cannot import test/selftests/${rel}:\n${describeImportError(error)}`);
  });
  return prog;
}

/** Imports every selftest file under test/selftests/ and returns its programs in path order. */
export async function load_all_selftests(): Promise<KselftestProgram[]> {
  const root = dirname(fileURLToPath(import.meta.url));
  const seen = new Set<KselftestProgram>();
  for (const m of await discoverModules(root)) {
    const dir = m.rel.includes("/") ? m.rel.slice(0, m.rel.lastIndexOf("/")) : ".";
    const found = m.error !== undefined ? [importFailure(m.rel, m.error)] : Object.values(m.exports).filter((v) => v instanceof KselftestProgram);
    for (const p of found as KselftestProgram[]) {
      p.dir ||= dir;
      seen.add(p);
    }
  }
  return [...seen];
}

const loaded = await load_all_selftests();

/** Every registered selftest program, loaded once when this module is first imported. */
export function all_selftests(): KselftestProgram[] {
  return [...loaded];
}
