import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERROR_CATALOGUE } from '../../src/core/errors.ts';

it('docs/errors.md lists exactly the catalogue, with the same HTTP statuses', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1] as string, Number(m[2]));
  const catalogue = new Map(Object.entries(ERROR_CATALOGUE).map(([code, spec]) => [code, spec.status]));
  assert.deepEqual([...rows.keys()].sort(), [...catalogue.keys()].sort(), 'codes differ');
  for (const [code, status] of catalogue) assert.equal(rows.get(code), status, `status of ${code}`);
});
