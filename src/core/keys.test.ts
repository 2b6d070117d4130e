import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { compareKeys, prefixUpperBound } from './keys.ts';

it('prefixUpperBound is above every string with the prefix and at or below every greater string without it', () => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 6 }), (prefix, suffix, other) => {
    const ub = prefixUpperBound(prefix);
    if (ub === undefined) return;
    assert.ok(compareKeys(prefix + suffix, ub) < 0);
    if (!other.startsWith(prefix) && compareKeys(other, prefix) > 0) assert.ok(compareKeys(other, ub) >= 0);
  }));
  assert.equal(prefixUpperBound(''), undefined);
  assert.equal(prefixUpperBound('ab'), 'ac');
  assert.equal(prefixUpperBound('a\u{10FFFF}'), 'b');
  assert.equal(prefixUpperBound('\uD7FF'), '\uE000');
});

it('compareKeys orders by code point, as SQLite orders UTF-8 bytes', () => {
  assert.ok(compareKeys('\uFFFF', '\u{10000}') < 0); // UTF-16 order would say the opposite
  assert.ok(compareKeys('a', 'ab') < 0);
  assert.equal(compareKeys('x', 'x'), 0);
});
