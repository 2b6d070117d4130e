/**
 * The deterministic workload of the crash test (test/state/crash.test.ts) and its child
 * (test/fixtures/crash-child.ts): transaction number i, committed at LSN i, sets key
 * `k${i % KEYS}` of dictionary `d` to `valueOf(i)` and, every 7th, also deletes another key. So
 * the exact state of the partition at any LSN can be computed.
 */
import type { Partition } from '../../src/state/index.ts';

export const SERVICE_NAME = 'fabric:/App/Svc';
export const DICT = 'd';
export const KEYS = 1000;
/** Characters of padding per value: KEYS × PAD is the size of the live state (a few MB). */
export const PAD = 2000;

export interface CrashValue {
  readonly i: number;
  readonly pad: string;
}

export function valueOf(i: number): CrashValue {
  return { i, pad: String.fromCharCode(97 + (i % 26)).repeat(PAD) };
}

/** The changes of transaction `i`, in order. */
export function opsOf(i: number): Array<{ op: 'set'; key: string; i: number } | { op: 'delete'; key: string }> {
  const ops: Array<{ op: 'set'; key: string; i: number } | { op: 'delete'; key: string }> = [{ op: 'set', key: `k${i % KEYS}`, i }];
  if (i % 7 === 0) ops.push({ op: 'delete', key: `k${(i * 13 + 5) % KEYS}` });
  return ops;
}

/** Commits transaction `lsn` (the partition must be at `lsn - 1`); returns the LSN it got. */
export function commitTx(p: Partition, lsn: number): bigint | undefined {
  return p.transact((tx) => {
    const d = tx.dictionary(DICT);
    for (const o of opsOf(lsn)) {
      if (o.op === 'set') d.set(o.key, valueOf(o.i));
      else d.delete(o.key);
    }
  }).lsn;
}

/** The state after transactions 1..lsn: key → the transaction number whose value it holds. */
export function expectedAt(lsn: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 1; i <= lsn; i++) {
    for (const o of opsOf(i)) {
      if (o.op === 'set') m.set(o.key, o.i);
      else m.delete(o.key);
    }
  }
  return m;
}

/**
 * Differences between the partition's content and the state at `lsn` (empty when they are
 * exactly equal), described briefly for an assertion message.
 */
export function diffFromExpected(p: Partition, lsn: number): string[] {
  const problems: string[] = [];
  const names = p.dictionaryNames();
  const wantNames = lsn > 0 ? [DICT] : [];
  if (JSON.stringify(names) !== JSON.stringify(wantNames)) problems.push(`dictionaries ${JSON.stringify(names)}, expected ${JSON.stringify(wantNames)}`);
  const want = expectedAt(lsn);
  const seen = new Set<string>();
  for (const { key, value } of p.dictionary(DICT).enumerate()) {
    seen.add(key);
    const i = want.get(key);
    const got = value as Partial<CrashValue> | null;
    if (i === undefined) problems.push(`${key}: present (i=${String(got?.i)}), expected absent`);
    else if (JSON.stringify(value) !== JSON.stringify(valueOf(i))) problems.push(`${key}: holds i=${String(got?.i)}, expected i=${i}`);
  }
  for (const [key, i] of want) if (!seen.has(key)) problems.push(`${key}: absent, expected i=${i}`);
  return problems;
}
