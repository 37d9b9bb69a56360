// kemu tooling: a validator for the Trace Event Format (the JSON Chrome's about:tracing and the
// Perfetto UI import), covering what kemu writes and the rules viewers rely on:
// - the container: an array of events, or an object with a traceEvents array and optional
//   displayTimeUnit ("ms" | "ns");
// - every event: string name and ph, integer pid and tid, finite non-negative ts in µs (not
//   needed on metadata), optional string cat and object args;
// - per phase: X needs dur >= 0; i/I an optional scope s of g/p/t; C numeric args; M one of
//   the metadata names with args.name a string for the *_name ones;
// - B/E pairs balanced and properly nested per thread, an E never before its B, and an E that
//   names its slice naming the innermost open one;
// - kemu's own rule: every thread that has events is named by thread_name metadata (one track
//   per context).
// Returns the problems found, empty when the trace is valid.

const PHASES = new Set(["B", "E", "X", "i", "I", "C", "b", "n", "e", "s", "t", "f", "P", "O", "N", "D", "M", "R", "c"]);
const METADATA = new Set(["process_name", "process_labels", "process_sort_index", "thread_name", "thread_sort_index"]);

type json_event = Record<string, unknown>;

function is_int(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v);
}

function is_time(v: unknown): boolean {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

function check_fields(e: json_event, where: string, out: string[]): void {
  if (typeof e.name !== "string") out.push(`${where}: name must be a string`);
  if (typeof e.ph !== "string" || !PHASES.has(e.ph)) out.push(`${where}: unknown phase ${JSON.stringify(e.ph)}`);
  if (!is_int(e.pid)) out.push(`${where}: pid must be an integer`);
  if (!is_int(e.tid)) out.push(`${where}: tid must be an integer`);
  if (e.ph !== "M" && !is_time(e.ts)) out.push(`${where}: ts must be a finite non-negative number (µs)`);
  if (e.cat !== undefined && typeof e.cat !== "string") out.push(`${where}: cat must be a string`);
  if (e.args !== undefined && (typeof e.args !== "object" || e.args === null || Array.isArray(e.args))) {
    out.push(`${where}: args must be an object`);
  }
}

function check_phase(e: json_event, where: string, out: string[]): void {
  const args = (e.args ?? {}) as Record<string, unknown>;
  switch (e.ph) {
    case "X":
      if (!is_time(e.dur)) out.push(`${where}: a complete event needs dur >= 0`);
      break;
    case "i":
    case "I":
      if (e.s !== undefined && e.s !== "g" && e.s !== "p" && e.s !== "t") out.push(`${where}: instant scope must be g, p or t`);
      break;
    case "C":
      if (Object.values(args).some((v) => typeof v !== "number")) out.push(`${where}: counter args must be numbers`);
      break;
    case "M":
      if (!METADATA.has(String(e.name))) out.push(`${where}: unknown metadata ${JSON.stringify(e.name)}`);
      else if (String(e.name).endsWith("_name") && typeof args.name !== "string") out.push(`${where}: ${String(e.name)} needs args.name`);
      break;
  }
}

/** B/E balance per thread, in file order (how the importers pair them). */
function check_nesting(events: json_event[], out: string[]): void {
  const open = new Map<string, Array<{ name: string; ts: number; i: number }>>();
  events.forEach((e, i) => {
    if (e.ph !== "B" && e.ph !== "E") return;
    const key = `${String(e.pid)}/${String(e.tid)}`;
    const stack = open.get(key) ?? [];
    open.set(key, stack);
    if (e.ph === "B") {
      stack.push({ name: String(e.name), ts: e.ts as number, i });
      return;
    }
    const top = stack.pop();
    if (!top) return out.push(`event ${i}: E on thread ${key} with no open B`);
    if ((e.ts as number) < top.ts) out.push(`event ${i}: E at ${String(e.ts)} before its B (event ${top.i}) at ${top.ts}`);
    if (typeof e.name === "string" && e.name !== "" && e.name !== top.name) {
      out.push(`event ${i}: E "${e.name}" closes "${top.name}" (event ${top.i})`);
    }
  });
  for (const [key, stack] of open) for (const b of stack) out.push(`event ${b.i}: B "${b.name}" on thread ${key} never ends`);
}

function check_thread_names(events: json_event[], out: string[]): void {
  const named = new Set(events.filter((e) => e.ph === "M" && e.name === "thread_name").map((e) => `${String(e.pid)}/${String(e.tid)}`));
  const used = new Set(events.filter((e) => e.ph !== "M").map((e) => `${String(e.pid)}/${String(e.tid)}`));
  for (const t of used) if (!named.has(t)) out.push(`thread ${t} has events but no thread_name metadata`);
}

/** The problems of a parsed Trace Event Format document; empty when valid. */
export function validate_trace_events(doc: unknown): string[] {
  const out: string[] = [];
  let events: unknown;
  if (Array.isArray(doc)) events = doc;
  else if (typeof doc === "object" && doc !== null) {
    const d = doc as Record<string, unknown>;
    events = d.traceEvents;
    if (d.displayTimeUnit !== undefined && d.displayTimeUnit !== "ms" && d.displayTimeUnit !== "ns") {
      out.push(`displayTimeUnit must be "ms" or "ns"`);
    }
  }
  if (!Array.isArray(events)) return [...out, "no traceEvents array"];
  const evs: json_event[] = [];
  events.forEach((e, i) => {
    if (typeof e !== "object" || e === null || Array.isArray(e)) return out.push(`event ${i}: not an object`);
    evs.push(e as json_event);
    check_fields(e as json_event, `event ${i}`, out);
    check_phase(e as json_event, `event ${i}`, out);
  });
  check_nesting(evs, out);
  check_thread_names(evs, out);
  return out;
}
