// Mirrors lib/random32.c (Linux 6.1): the Tausworthe prandom generator with an explicit state.
// The machine's seed decides every "random" choice (scheduling, fault injection), so runs repeat.

export interface rnd_state {
  s1: number;
  s2: number;
  s3: number;
  s4: number;
}

// One Tausworthe step on a 32-bit word; 32-bit operators are correct here (not addresses).
function tausworthe(s: number, a: number, b: number, c: number, d: number): number {
  return ((((s & c) >>> 0) << d) ^ ((((s << a) ^ s) >>> 0) >>> b)) >>> 0;
}

export function prandom_u32_state(state: rnd_state): number {
  state.s1 = tausworthe(state.s1, 6, 13, 0xfffffffe, 18);
  state.s2 = tausworthe(state.s2, 2, 27, 0xfffffff8, 2);
  state.s3 = tausworthe(state.s3, 13, 21, 0xfffffff0, 7);
  state.s4 = tausworthe(state.s4, 3, 12, 0xffffff80, 13);
  return (state.s1 ^ state.s2 ^ state.s3 ^ state.s4) >>> 0;
}

// Each component needs a minimum value for the generator to have a full period.
function seed_min(x: number, m: number): number {
  return x < m ? x + m : x;
}

function lcg(x: number): number {
  return Math.imul(x, 69069) >>> 0;
}

export function prandom_seed_state(seed: number): rnd_state {
  const hi = Math.floor(seed / 0x100000000) >>> 0;
  const i = ((seed >>> 0) ^ hi) >>> 0;
  const s1 = seed_min(lcg(i), 2);
  const s2 = seed_min(lcg(s1), 8);
  const s3 = seed_min(lcg(s2), 16);
  const s4 = seed_min(lcg(s3), 128);
  const state = { s1, s2, s3, s4 };
  for (let n = 0; n < 10; n++) prandom_u32_state(state); // warm-up, as prandom_warmup()
  return state;
}

/** Uniform integer in [0, n) from the state (n ≤ 2^32). */
export function prandom_u32_below(state: rnd_state, n: number): number {
  return Math.floor((prandom_u32_state(state) / 0x100000000) * n);
}
