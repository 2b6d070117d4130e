import { join } from 'node:path';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { runCatalogContract } from '../contract/catalog.contract.ts';
import { tempDir } from '../support/tmp.ts';

let file = '';
runCatalogContract({
  name: 'SQLite',
  create: async (t) => {
    file = join(tempDir(t), 'catalog.sqlite');
    const c = new SqliteCatalog(file);
    t.after(() => c.close().catch(() => undefined));
    return c;
  },
  access: (c) => (c as SqliteCatalog).access,
  reopen: async (t) => {
    const c = new SqliteCatalog(file);
    t.after(() => c.close().catch(() => undefined));
    return c;
  },
});
