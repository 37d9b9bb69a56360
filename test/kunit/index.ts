// kemu: the registry of KUnit suites (cf. the kernel's .kunit_test_suites section). Every file
// under test/kunit/** is imported at load time and each export that is a kunit_suite (or an array
// of them, like kunit_test_suites(&a, &b)) is registered, in file-path order. A file that fails to
// import becomes a failing suite named after it, so a broken suite cannot vanish silently.

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { KUNIT_FAIL, type kunit, type kunit_suite } from "../../lib/kunit/test.ts";
import { describeImportError, discoverModules, fileTestName } from "../harness/discover.ts";

export function isKunitSuite(v: unknown): v is kunit_suite {
  return typeof v === "object" && v !== null && typeof (v as kunit_suite).name === "string" &&
    Array.isArray((v as kunit_suite).test_cases);
}

/** A stand-in for a suite file that could not be imported: one case that fails with the error. */
function importFailure(rel: string, error: unknown): kunit_suite {
  const msg = describeImportError(error);
  return {
    name: fileTestName(rel),
    test_cases: [{ name: "import", run_case: (test: kunit) => KUNIT_FAIL(test, `cannot import test/kunit/${rel}:\n${msg}`) }],
  };
}

/** Imports every suite file under test/kunit/ and returns their suites in path order. */
export async function load_all_suites(): Promise<kunit_suite[]> {
  const root = dirname(fileURLToPath(import.meta.url));
  const seen = new Set<kunit_suite>();
  for (const m of await discoverModules(root)) {
    if (m.error !== undefined) seen.add(importFailure(m.rel, m.error));
    for (const v of Object.values(m.exports)) {
      for (const s of Array.isArray(v) ? v : [v]) if (isKunitSuite(s)) seen.add(s);
    }
  }
  return [...seen];
}

const loaded = await load_all_suites();

/** Every registered suite, loaded once when this module is first imported. */
export function all_suites(): kunit_suite[] {
  return [...loaded];
}
