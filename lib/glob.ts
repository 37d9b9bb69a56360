// Mirrors lib/glob.c (Linux 6.8): glob_match(), the shell-style matcher KUnit's filter_glob uses.
// `*` matches any run (also empty), `?` one character, `[...]` a class with `a-z` ranges and a
// leading `!` for negation. There is no escaping, as in the kernel.

/** Matches a bracket class starting after '[' at `p`; returns [matched, index after ']'] or null if unclosed. */
function match_class(pat: string, p: number, c: string): [boolean, number] | null {
  let inverted = false;
  if (pat[p] === "!") {
    inverted = true;
    p++;
  }
  let matched = false;
  let first = true;
  // A ']' right after '[' (or '[!') is a literal member, as in the kernel.
  while (p < pat.length && (first || pat[p] !== "]")) {
    first = false;
    let a = pat[p]!;
    let b = a;
    if (pat[p + 1] === "-" && p + 2 < pat.length && pat[p + 2] !== "]") {
      b = pat[p + 2]!;
      p += 2;
      if (b < a) [a, b] = [b, a];
    }
    if (c >= a && c <= b) matched = true;
    p++;
  }
  if (p >= pat.length) return null;
  return [matched !== inverted, p + 1];
}

/**
 * glob_match(): true if `str` matches `pat` entirely. Backtracks only to the last `*`, which
 * is enough for this pattern language (linear space, no recursion).
 */
export function glob_match(pat: string, str: string): boolean {
  let p = 0;
  let s = 0;
  let back_pat = -1;
  let back_str = -1;
  for (;;) {
    const c = str[s];
    const d = pat[p];
    if (d === "*") {
      if (p + 1 === pat.length) return true;
      back_pat = ++p;
      back_str = s;
      continue;
    }
    if (c === undefined) return d === undefined;
    let ok = false;
    if (d === "?") {
      ok = true;
      p++;
    } else if (d === "[") {
      const r = match_class(pat, p + 1, c);
      if (r) {
        ok = r[0];
        p = r[1];
      } else {
        ok = c === "[";
        p++;
      }
    } else if (d !== undefined && d === c) {
      ok = true;
      p++;
    }
    if (ok) {
      s++;
      continue;
    }
    if (back_pat < 0) return false;
    p = back_pat;
    s = ++back_str;
  }
}
