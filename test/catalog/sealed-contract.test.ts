import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SealedCatalog } from '../../src/catalog/sealed.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { runCatalogContract } from '../contract/catalog.contract.ts';
import { tempDir } from '../support/tmp.ts';

// The decorator keeps the whole catalog contract of the adapter it wraps.
const key = randomBytes(32);
let file = '';
runCatalogContract({
  name: 'SealedCatalog over SQLite',
  create: async (t) => {
    file = join(tempDir(t), 'catalog.sqlite');
    const c = new SealedCatalog(new SqliteCatalog(file), key);
    t.after(() => c.close().catch(() => undefined));
    return c;
  },
  reopen: async (t) => {
    const c = new SealedCatalog(new SqliteCatalog(file), key);
    t.after(() => c.close().catch(() => undefined));
    return c;
  },
});
