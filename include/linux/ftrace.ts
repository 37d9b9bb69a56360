// Mirrors include/linux/ftrace.h (Linux 6.8), the function-graph side: where the kernel's
// compiler puts an fentry call at the start of every function and ftrace patches it to record
// entry and return, kemu's kernel functions open a scope on their first line,
//
//   using _ = ftrace(k, "handle_mm_fault");
//
// which records the entry and, when the function returns (an async one: when it completes;
// also when it throws), the exit — on the shadow stack of the context that called it. While no
// machine runs function_graph this costs one comparison. Methods of classes owned elsewhere
// are patched the same way with ftrace_patch_methods (the analogue of patching fentry sites).

import "reflect-metadata";
import type { Kernel } from "../../kernel/kernel.ts";
import { ftrace_graph_key, tracing_of, type graph_scope } from "../../kernel/trace/trace.ts";

/**
 * The entry of traced function `func` in machine `k`; disposing the scope is its return. Null
 * (nothing to dispose, the cheapest `using`) while function_graph is off. A sync function that
 * may hand back a promise returns through the scope instead:
 * `using scope = ftrace(k, "f"); ... return ftrace_ret(scope, p);` (the return is when p settles).
 */
export function ftrace(k: Kernel, func: string): graph_scope | null {
  if (ftrace_graph_key.count === 0) return null;
  return tracing_of(k)?.graph_scope(func) ?? null;
}

/** The return of a traced function whose result may be a promise: see ftrace(). */
export function ftrace_ret<R>(scope: graph_scope | null, r: R): R {
  return scope ? scope.ret(r) : r;
}

/**
 * Runs `fn` as traced function `func` (sync or async), for call sites that wrap a callback;
 * `site` (the kemu file) tells apart functions of the same name in different files.
 */
export function ftrace_call<R>(k: Kernel | null | undefined, func: string, fn: () => R, site?: string): R {
  if (ftrace_graph_key.count === 0 || !k) return fn();
  const tr = tracing_of(k);
  return tr ? tr.trace_fn(func, fn, site) : fn();
}

/** Where a patched method was defined, for tools that link a function to its source. */
export interface ftrace_site {
  func: string;
  /** Repository-relative path of the kemu file. */
  file: string;
}

const patched_sites: ftrace_site[] = [];

/** Functions instrumented by ftrace_patch_methods, in patch order. */
export function ftrace_patched_sites(): readonly ftrace_site[] {
  return patched_sites;
}

type method_host = Record<string, unknown>;

/**
 * Patches methods of `cls` so each call is a traced function named like the method (the
 * kernel function it mirrors), or `[method, kernel_name]` where they differ. `kernel_of`
 * finds the machine from the instance. Sync methods stay sync. Patching twice is a no-op;
 * names the class lacks are skipped.
 */
export function ftrace_patch_methods(
  cls: { prototype: object },
  file: string,
  names: ReadonlyArray<string | readonly [method: string, func: string]>,
  kernel_of: (self: never) => Kernel | null | undefined,
): void {
  const proto = cls.prototype as method_host;
  for (const entry of names) {
    const [method, name] = typeof entry === "string" ? [entry, entry] : entry;
    const orig = proto[method];
    if (typeof orig !== "function" || (orig as { __ftrace?: boolean }).__ftrace) continue;
    const fn = orig as (...args: unknown[]) => unknown;
    const wrapped = function (this: never, ...args: unknown[]): unknown {
      return ftrace_call(kernel_of(this), name, () => fn.apply(this, args), file);
    };
    Object.defineProperty(wrapped, "__ftrace", { value: true });
    Object.defineProperty(wrapped, "name", { value: name });
    proto[method] = wrapped;
    patched_sites.push({ func: name, file });
  }
}
