import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERROR_CATALOGUE } from '../../src/core/errors.ts';

interface DocRow {
  status: number;
  title: string;
  hint: string;
}

/** The rows of docs/errors.md's table: | `CODE` | status | title | hint |, as plain text. */
function docRows(): Map<string, DocRow> {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  // The doc sets names and commands in code spans; the catalogue's words are the same without them.
  const plain = (cell: string): string => cell.trim().replace(/`/g, '');
  const rows = new Map<string, DocRow>();
  for (const m of doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|(.*)\|$/gm)) {
    const cells = (m[3] as string).split(' | ');
    assert.equal(cells.length, 2, `the row of ${m[1]} has a title and a hint`);
    rows.set(m[1] as string, { status: Number(m[2]), title: plain(cells[0] as string), hint: plain(cells[1] as string) });
  }
  return rows;
}

it('docs/errors.md lists exactly the catalogue, with the same HTTP statuses', () => {
  const rows = docRows();
  assert.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CATALOGUE).sort(), 'codes differ');
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) assert.equal(rows.get(code)?.status, spec.status, `status of ${code}`);
});

it("docs/errors.md gives each code the catalogue's title and hint", () => {
  const rows = docRows();
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
    assert.equal(rows.get(code)?.title, spec.title, `title of ${code}`);
    assert.equal(rows.get(code)?.hint, spec.hint, `hint of ${code}`);
  }
});
