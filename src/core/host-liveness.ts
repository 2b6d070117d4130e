/**
 * Whether a host is alive, from what the catalog last saw of it (any instance may have seen it):
 * a host polls for orders in a loop, each poll held open up to MAX_ORDER_POLL_MS.
 */

/** The longest order poll the service holds open. */
export const MAX_ORDER_POLL_MS = 60_000;
/** A host whose last poll ended this recently (not by hanging up) is between two polls. */
export const BETWEEN_POLLS_MS = 5_000;
/** Default time a host may be unseen before it is down and its operations fail. */
export const DEFAULT_HOST_GRACE_MS = 90_000;

export interface HostSightings {
  readonly lastSeenUtc: string;
  readonly polling: boolean;
  readonly hungUp: boolean;
}

/**
 * Serving now: in a poll (opened less than a poll's length ago: an instance that died holding it
 * left the flag set), or between two. Another host may take its partitions only when it is not.
 */
export function hostIsLive(h: HostSightings, now: Date): boolean {
  const quietMs = now.getTime() - new Date(h.lastSeenUtc).getTime();
  if (h.polling) return quietMs < MAX_ORDER_POLL_MS + BETWEEN_POLLS_MS;
  return !h.hungUp && quietMs < BETWEEN_POLLS_MS;
}

/** Down: not live, and unseen for `graceMs` (a host restarting, or moving to another instance, is not down). */
export function hostIsDown(h: HostSightings, now: Date, graceMs: number): boolean {
  return !hostIsLive(h, now) && now.getTime() - new Date(h.lastSeenUtc).getTime() >= graceMs;
}
