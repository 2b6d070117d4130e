/** A fresh temporary directory per test, removed afterwards unless LIFEBOAT_KEEP_TMP is set. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export function tempDir(t: TestContext | { after(fn: () => void): void }, prefix = 'lifeboat-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    if (!process.env.LIFEBOAT_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
