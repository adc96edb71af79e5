// SPDX-License-Identifier: Apache-2.0
// The order of the measured bursts: repetitions interleaved across contenders, so that a slow
// stretch of the shared machine lands on every contender alike instead of on one contender's runs.

export const REP_ORDER = 'repetition r runs every contender once, starting with the ((r-1) mod k)-th of the k in the order given, so no contender always runs first';

/** The contenders of repetition `rep` (1-based): every one once, rotated by rep-1 (see REP_ORDER). */
export function interleaved<T>(contenders: readonly T[], rep: number): T[] {
  const k = contenders.length;
  if (!k) return [];
  const off = (rep - 1) % k;
  return [...contenders.slice(off), ...contenders.slice(0, off)];
}

