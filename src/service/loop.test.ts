import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Loop, type LoopTimer } from './loop.ts';

/** A timer whose callbacks run when the test says so. */
function manualTimer(): LoopTimer & { fire(): void; readonly armed: number } {
  const pending = new Map<number, () => void>();
  let n = 0;
  return {
    setTimeout: (fn) => {
      pending.set(++n, fn);
      return n;
    },
    clearTimeout: (h) => {
      pending.delete(h as number);
    },
    fire: () => {
      const due = [...pending.values()];
      pending.clear();
      for (const fn of due) fn();
    },
    get armed() {
      return pending.size;
    },
  };
}

it('runs one more step for any number of wakes during a step, not one per wake', async () => {
  const timer = manualTimer();
  let steps = 0;
  let release: () => void = () => undefined;
  const loop = new Loop(async () => {
    steps++;
    if (steps === 1) await new Promise<void>((r) => { release = r; });
    return undefined;
  }, { name: 'test', clock: { now: () => new Date(0) }, timer, idleMs: 60_000 });
  loop.start();
  timer.fire();
  assert.equal(steps, 1);
  for (let i = 0; i < 50; i++) loop.wake();
  assert.equal(timer.armed, 0, 'no step is armed while one is under way');
  release();
  await new Promise((r) => setImmediate(r));
  timer.fire();
  await new Promise((r) => setImmediate(r));
  assert.equal(steps, 2, 'the wakes ran one step after the first');
  timer.fire();
  await new Promise((r) => setImmediate(r));
  assert.equal(steps, 3, 'then the idle wait (the manual timer fires it at once)');
  await loop.stop(100);
});

it('without a wake during the step, sleeps until the moment the step returns', async () => {
  const timer = manualTimer();
  const delays: number[] = [];
  const loop = new Loop(async () => new Date(30_000), {
    name: 'test', clock: { now: () => new Date(0) }, idleMs: 60_000,
    timer: { ...timer, setTimeout: (fn, ms) => { delays.push(ms); return timer.setTimeout(fn, ms); } },
  });
  loop.start();
  timer.fire();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(delays.slice(0, 2), [0, 30_000]);
  await loop.stop(100);
});

it('keeps at least minGapMs between steps, wakes included', async () => {
  const timer = manualTimer();
  const delays: number[] = [];
  let steps = 0;
  const loop = new Loop(async () => {
    steps++;
    return new Date(5); // due again almost at once
  }, {
    name: 'test', clock: { now: () => new Date(0) }, idleMs: 60_000, minGapMs: 100,
    timer: { ...timer, setTimeout: (fn, ms) => { delays.push(ms); return timer.setTimeout(fn, ms); } },
  });
  loop.start();
  timer.fire();
  await new Promise((r) => setImmediate(r));
  assert.equal(steps, 1);
  assert.deepEqual(delays, [0, 100], 'due in 5 ms: the next step waits the gap');
  await loop.stop(100);
});

it('wakeBy runs a step by the moment given: sooner than armed, never later, and once for a step under way', async () => {
  const timer = manualTimer();
  const delays: number[] = [];
  let now = 0;
  let release: () => void = () => undefined;
  let steps = 0;
  const loop = new Loop(async () => {
    steps++;
    if (steps === 2) await new Promise<void>((r) => { release = r; });
    return undefined; // nothing scheduled: the idle wait
  }, {
    name: 'test', clock: { now: () => new Date(now) }, idleMs: 60_000,
    timer: { ...timer, setTimeout: (fn, ms) => { delays.push(ms); return timer.setTimeout(fn, ms); } },
  });
  loop.start();
  timer.fire();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(delays, [0, 60_000]);
  loop.wakeBy(new Date(1_000));
  assert.deepEqual(delays, [0, 60_000, 1_000], 'sooner than the idle wait: re-armed');
  loop.wakeBy(new Date(5_000));
  assert.equal(delays.length, 3, 'later than armed: nothing changes');
  assert.equal(timer.armed, 1);
  now = 1_000;
  timer.fire();
  assert.equal(steps, 2);
  loop.wakeBy(new Date(1_500));
  loop.wakeBy(new Date(1_300));
  assert.equal(timer.armed, 0, 'no step is armed while one is under way');
  release();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(delays.slice(3), [300], 'after the step, by the soonest moment asked during it');
  await loop.stop(100);
});
