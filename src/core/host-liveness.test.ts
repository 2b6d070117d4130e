import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BETWEEN_POLLS_MS, MAX_ORDER_POLL_MS, hostIsDown, hostIsLive } from './host-liveness.ts';

const at = (ms: number): Date => new Date(Date.UTC(2026, 0, 1) + ms);
const seen = (polling: boolean, hungUp = false) => ({ lastSeenUtc: at(0).toISOString(), polling, hungUp });

test('a host in a poll is live for a poll\'s length; between polls for a moment; gone at once when it hung up', () => {
  assert.equal(hostIsLive(seen(true), at(MAX_ORDER_POLL_MS)), true);
  assert.equal(hostIsLive(seen(true), at(MAX_ORDER_POLL_MS + BETWEEN_POLLS_MS)), false, 'an instance died holding its poll');
  assert.equal(hostIsLive(seen(false), at(BETWEEN_POLLS_MS - 1)), true);
  assert.equal(hostIsLive(seen(false), at(BETWEEN_POLLS_MS)), false);
  assert.equal(hostIsLive(seen(false, true), at(1)), false);
});

test('a host is down only when it is not live and the grace has passed', () => {
  assert.equal(hostIsDown(seen(false, true), at(29_999), 30_000), false, 'hung up, but may be restarting');
  assert.equal(hostIsDown(seen(false, true), at(30_000), 30_000), true);
  assert.equal(hostIsDown(seen(true), at(40_000), 30_000), false, 'still in its poll');
  assert.equal(hostIsDown(seen(true), at(MAX_ORDER_POLL_MS + BETWEEN_POLLS_MS), 30_000), true);
});
