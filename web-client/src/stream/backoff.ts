// Reconnect delays: 250 ms doubling to 5 s, with jitter so that many browsers that
// lost the same server do not all come back in the same millisecond.

export const BACKOFF_INITIAL_MS = 250;
export const BACKOFF_MAX_MS = 5000;

/** The delay before reconnect attempt `attempt` (1 for the first retry), before jitter. */
export function backoffCeiling(attempt: number): number {
  const exponent = Math.max(0, attempt - 1);
  // 2^5 * 250 already exceeds the cap; clamp the exponent so huge attempt counts stay finite.
  return Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.min(exponent, 16));
}

/**
 * The jittered delay for attempt `attempt`: uniformly between half the ceiling and the
 * ceiling ("equal jitter"), so delays still grow while spreading reconnects out.
 * `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
