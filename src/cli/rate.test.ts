import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateMeter, etaText } from './rate.ts';

describe('RateMeter', () => {
  it('knows no rate from one sample, then bytes per second over the window', () => {
    const m = new RateMeter(5_000);
    m.add(0, 0);
    assert.equal(m.bytesPerSecond(), undefined);
    assert.equal(m.secondsLeft(100), undefined);
    m.add(1_000, 1_000);
    assert.equal(m.bytesPerSecond(), 1_000);
    m.add(2_000, 3_000);
    assert.equal(m.bytesPerSecond(), 1_500);
    assert.equal(m.secondsLeft(6_000), 2);
  });

  it('forgets samples older than the window, so the rate follows a change of speed', () => {
    const m = new RateMeter(2_000);
    m.add(0, 0);
    m.add(1_000, 10_000);
    m.add(3_000, 11_000);
    m.add(5_000, 12_000);
    assert.equal(m.bytesPerSecond(), 500);
  });

  it('starts again when the count goes back', () => {
    const m = new RateMeter();
    m.add(0, 0);
    m.add(1_000, 5_000);
    m.add(2_000, 100);
    assert.equal(m.bytesPerSecond(), undefined);
  });

  it('a stalled transfer has no time left to tell', () => {
    const m = new RateMeter();
    m.add(0, 10);
    m.add(1_000, 10);
    assert.equal(m.secondsLeft(100), undefined);
  });
});

it('etaText', () => {
  assert.deepEqual([etaText(7.4), etaText(185), etaText(3720)], ['7s', '3m05s', '1h02m']);
});
