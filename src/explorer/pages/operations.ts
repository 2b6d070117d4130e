/**
 * The operations in flight. The API has no list of operations yet, so this page reads every
 * partition's backup and restore progress and shows those not ended (Accepted, …InProgress).
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { ACTIVE_BACKUP_STATES, ACTIVE_RESTORE_STATES } from '../../wire/operations.ts';
import { timeText, transferText } from '../format.ts';
import { useLoad, usePoll } from '../poll.ts';
import { type Session, errorText } from '../session.ts';
import { loadTree, mapLimited, partitionsOf } from '../tree.ts';

/** Each partition's progress is read this often while the page is open. */
const REFRESH_MS = 1000;

interface InFlight {
  readonly partitionId: string;
  readonly serviceName: string;
  readonly kind: 'Backup' | 'Restore';
  readonly state: string;
  readonly since: string;
  readonly transfer: string | undefined;
}

export function OperationsPage({ session }: { session: Session }) {
  const c = session.client;
  const tree = useLoad(() => loadTree(c), [session]);
  const [ops, setOps] = useState<InFlight[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  usePoll(async () => {
    if (!tree.value) return false;
    try {
      const found = await mapLimited(partitionsOf(tree.value), 8, async ({ serviceName, partition }): Promise<InFlight[]> => {
        const partitionId = partition.PartitionInformation.Id;
        const [b, r] = await Promise.all([c.operations.backupProgress(partitionId), c.operations.restoreProgress(partitionId)]);
        const out: InFlight[] = [];
        if (ACTIVE_BACKUP_STATES.includes(b.BackupState)) out.push({ partitionId, serviceName, kind: 'Backup', state: b.BackupState, since: b.TimeStampUtc, transfer: transferText(b) });
        if (ACTIVE_RESTORE_STATES.includes(r.RestoreState)) out.push({ partitionId, serviceName, kind: 'Restore', state: r.RestoreState, since: r.TimeStampUtc, transfer: transferText(r) });
        return out;
      });
      setOps(found.flat());
      setError(undefined);
    } catch (err) {
      setError(errorText(err));
    }
    return true;
  }, REFRESH_MS, tree.value);
  return html`
    <h1>Operations in flight</h1>
    <p class="hint">Backups and restores not ended yet, from each partition's progress (read every second while this page is open).</p>
    ${tree.error || error ? html`<p role="alert" class="error">${tree.error ?? error}</p>` : null}
    ${ops === undefined ? html`<p role="status">Loading…</p>` : ops.length === 0 ? html`<p role="status">No backup or restore is running.</p>` : html`
      <table>
        <caption class="visually-hidden">Operations in flight</caption>
        <thead><tr><th scope="col">Partition</th><th scope="col">Service</th><th scope="col">Operation</th><th scope="col">State</th><th scope="col">Since</th><th scope="col">Transferred</th></tr></thead>
        <tbody>
          ${ops.map((o) => html`
            <tr>
              <th scope="row"><a href=${`#/partition/${o.partitionId}`}>${o.partitionId}</a></th>
              <td>${o.serviceName}</td><td>${o.kind}</td><td>${o.state}</td><td>${timeText(o.since)}</td><td>${o.transfer ?? '—'}</td>
            </tr>`)}
        </tbody>
      </table>`}`;
}
