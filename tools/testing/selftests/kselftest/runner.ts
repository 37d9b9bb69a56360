// kemu's tools/testing/selftests/kselftest/runner.sh (Linux 6.8): runs selftest programs one
// after another as `make run_tests` does, nesting each program's TAP by prefixing it with "# ",
// and reports one result line per program from its exit code (0 ok, 4 SKIP, 124 TIMEOUT).

import { KSFT_SKIP, type KselftestProgram } from "../kselftest_harness.ts";

/** kselftest_default_timeout, host seconds. */
export const KSELFTEST_DEFAULT_TIMEOUT = 45;

export interface RunnerOptions {
  write: (line: string) => void;
  /** Replaces the seed of every machine the tests boot. */
  seed?: number;
  /** Arguments for one program by name (runner.sh's KSELFTEST_<NAME>_ARGS). */
  args?: (program: KselftestProgram) => string[];
}

export interface RunnerResult {
  /** 0 when every program passed or skipped. */
  exitCode: number;
  programs: Array<{ program: KselftestProgram; rc: number }>;
}

/** Runs `program` with the runner's timeout; 124 on timeout, as `timeout(1)` exits. */
async function runWithTimeout(program: KselftestProgram, argv: string[], write: (l: string) => void, seed?: number): Promise<number> {
  const seconds = program.opts.timeout ?? KSELFTEST_DEFAULT_TIMEOUT;
  // Aborting stands for timeout(1)'s SIGTERM: the program stops waiting and starts no more tests.
  const kill = new AbortController();
  const run = program.main(argv, { write, seed, signal: kill.signal });
  if (!seconds) return run;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<number>((res) => {
    timer = setTimeout(() => {
      kill.abort();
      res(124);
    }, seconds * 1000);
  });
  try {
    return await Promise.race([run, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** run_many(): "TAP version 13", the plan, then each program wrapped by run_one(). */
export async function runMany(programs: readonly KselftestProgram[], opts: RunnerOptions): Promise<RunnerResult> {
  const { write } = opts;
  write("TAP version 13");
  write(`1..${programs.length}`);
  const results: RunnerResult["programs"] = [];
  let failed = false;
  for (const [i, program] of programs.entries()) {
    const header = `selftests: ${program.dir}: ${program.name}`;
    write(`# ${header}`);
    let prefixing = true;
    const rc = await runWithTimeout(program, opts.args?.(program) ?? [], (l) => prefixing && write(`# ${l}`), opts.seed);
    // A timed-out program may still print; its output is cut off here, as timeout(1) kills it.
    prefixing = false;
    results.push({ program, rc });
    const n = i + 1;
    if (rc === 0) write(`ok ${n} ${header}`);
    else if (rc === KSFT_SKIP) write(`ok ${n} ${header} # SKIP`);
    else if (rc === 124) write(`not ok ${n} ${header} # TIMEOUT ${program.opts.timeout ?? KSELFTEST_DEFAULT_TIMEOUT} seconds`);
    else write(`not ok ${n} ${header} # exit=${rc}`);
    failed ||= rc !== 0 && rc !== KSFT_SKIP;
  }
  return { exitCode: failed ? 1 : 0, programs: results };
}
