import assert from 'node:assert/strict';
import { it } from 'node:test';
import { isLifeboatError } from '../core/errors.ts';
import { Limiter } from './limiter.ts';

it('runs at most `running` at once, queues `queued` more in order, and refuses the rest with LIFEBOAT_E_BUSY', async () => {
  const limiter = new Limiter(2, 3, 'jobs');
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  const releases: Array<() => void> = [];
  const job = (i: number) => limiter.run(async () => {
    active++;
    peak = Math.max(peak, active);
    order.push(i);
    await new Promise<void>((r) => releases.push(r));
    active--;
    return i;
  });
  const accepted = [0, 1, 2, 3, 4].map(job);
  const refused = await Promise.allSettled([job(5), job(6)]);
  for (const r of refused) assert.ok(r.status === 'rejected' && isLifeboatError(r.reason, 'LIFEBOAT_E_BUSY'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1]);
  while (order.length < 5 || releases.length > 0) {
    releases.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await Promise.all(accepted), [0, 1, 2, 3, 4]);
  assert.deepEqual(order, [0, 1, 2, 3, 4], 'queued jobs run in arrival order');
  assert.equal(peak, 2);
  assert.equal(await limiter.run(async () => 'free again'), 'free again');
});
