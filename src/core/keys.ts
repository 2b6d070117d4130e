/**
 * Ordering helpers for dictionary keys. Keys are strings compared as SQLite's BINARY collation
 * does: byte by byte in UTF-8, which is code point order.
 */

/**
 * The smallest string greater than every string that starts with `prefix`, or undefined when no
 * such string exists (the prefix is empty or only U+10FFFF). Used as an exclusive upper bound.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() ?? 0;
    if (last < 0x10ffff) {
      // Surrogate code points never occur in well-formed text; skip over them.
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      return String.fromCodePoint(...points, next);
    }
  }
  return undefined;
}

/** Compares two strings in UTF-8 byte order (code point order), as SQLite's BINARY collation. */
export function compareKeys(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const cx = x.value.codePointAt(0) ?? 0;
    const cy = y.value.codePointAt(0) ?? 0;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}
