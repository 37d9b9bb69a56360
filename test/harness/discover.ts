// kemu test harness: finds suite modules at run time. Every .ts file under a directory is
// imported (in path order, so suite order is stable) and its exports are handed back; a file that
// fails to import is reported with its error instead of hiding the rest. New suite files are
// picked up without editing any index.

import { readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";

export interface DiscoveredModule {
  /** Path relative to the searched directory, with "/" separators. */
  rel: string;
  exports: Record<string, unknown>;
  /** Set when the import threw; `exports` is then empty. */
  error?: unknown;
}

function isSuiteFile(name: string): boolean {
  return name.endsWith(".ts") && !name.endsWith(".d.ts") && !name.endsWith(".test.ts");
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile() && isSuiteFile(e.name)) out.push(p);
  }
  return out;
}

/** Imports every suite file under `root` except `root/index.ts`, sorted by relative path. */
export async function discoverModules(root: string): Promise<DiscoveredModule[]> {
  const files = walk(root)
    .map((file) => ({ file, rel: relative(root, file).split(sep).join("/") }))
    .filter((f) => f.rel !== "index.ts")
    .sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const out: DiscoveredModule[] = [];
  for (const { file, rel } of files) {
    try {
      out.push({ rel, exports: (await import(pathToFileURL(file).href)) as Record<string, unknown> });
    } catch (error) {
      out.push({ rel, exports: {}, error });
    }
  }
  return out;
}

/** A name usable as a KTAP test name for a file: "kernel/locking/mutex.ts" → "kernel_locking_mutex". */
export function fileTestName(rel: string): string {
  return rel.replace(/\.ts$/, "").replace(/[^A-Za-z0-9_-]/g, "_");
}

export function describeImportError(e: unknown): string {
  return e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
}
