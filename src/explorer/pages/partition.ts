/**
 * One partition: its protection and health, live progress of its backup and restore, an
 * on-demand backup, its backups (filtered by time and type, chains shown, Latest), and a restore
 * of one of them after a confirmation that says what will be lost.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { StorageDescription } from '../../core/storage-description.ts';
import type { BackupInfoWire } from '../../wire/backups.ts';
import { ACTIVE_BACKUP_STATES, ACTIVE_RESTORE_STATES, type BackupProgress, type RestoreProgress } from '../../wire/operations.ts';
import type { BackupPolicyWire } from '../../wire/policy.ts';
import { epochText, protectionText, shortId, suspensionText, timeText, transferText } from '../format.ts';
import { allPages } from '../../client/lifeboat-client.ts';
import { useLoad, usePoll } from '../poll.ts';
import { type Session, errorText } from '../session.ts';
import { keyRangeText } from '../tree.ts';
import { HealthBadge } from './hierarchy.ts';

/** Progress is read this often while an operation runs. */
const PROGRESS_INTERVAL_MS = 500;

type Source = 'policy' | 'fileshare';

/** The backups shown, and the storage they were listed from (a restore names the same one). */
interface Listed {
  readonly backups: readonly BackupInfoWire[];
  /** undefined: the policy's storage (the backup index lists it; the service knows its secrets). */
  readonly storage: StorageDescription | undefined;
}

interface Query {
  readonly storage: StorageDescription | undefined;
  readonly start: string;
  readonly end: string;
  readonly latest: boolean;
}

const localToDate = (v: string): Date | undefined => (v === '' ? undefined : new Date(v));

/** The chains of a list, numbered in the order their full backups were taken. */
function chainNumbers(backups: readonly BackupInfoWire[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const b of [...backups].sort((x, y) => x.CreationTimeUtc.localeCompare(y.CreationTimeUtc))) {
    if (!out.has(b.BackupChainId)) out.set(b.BackupChainId, out.size + 1);
  }
  return out;
}

function ProgressLine({ id, label, state, time, failure, transfer, extra }: {
  id: string; label: string; state: string; time: string; failure: { Code: string; Message: string } | null; transfer: string | undefined; extra?: string;
}) {
  return html`
    <div class="progress-line">
      <dt>${label}</dt>
      <dd>
        <strong id=${id} class=${`state state-${state.toLowerCase()}`}>${state === 'Invalid' ? 'None yet' : state}</strong>
        ${state === 'Invalid' ? null : html` <span class="muted">at ${timeText(time)}</span>`}
        ${transfer ? html` · <span>${transfer}</span>` : null}
        ${extra ? html` · <span>${extra}</span>` : null}
        ${failure ? html`<div class="error">${failure.Code}: ${failure.Message}</div>` : null}
      </dd>
    </div>`;
}

export function PartitionPage({ session, partitionId }: { session: Session; partitionId: string }) {
  const c = session.client;
  const info = useLoad(async () => {
    const [partition, config, health] = await Promise.all([
      c.hierarchy.getPartition(partitionId), c.protection.partitionConfiguration(partitionId), c.hierarchy.partitionHealth(partitionId).catch(() => undefined),
    ]);
    const policy: BackupPolicyWire | undefined = config.PolicyName ? await c.policies.get(config.PolicyName).catch(() => undefined) : undefined;
    return { partition, config, health, policy };
  }, [partitionId]);

  // Where backups are listed from and taken to: the policy's storage, or a file share given here.
  const [source, setSource] = useState<Source>('fileshare');
  const [path, setPath] = useState('');
  const [start, setStart] = useState('');
  const [end, setEnd] = useState('');
  const [latest, setLatest] = useState(false);
  const [type, setType] = useState<'All' | 'Full' | 'Incremental'>('All');
  const [query, setQuery] = useState<Query | undefined>(undefined);
  const [message, setMessage] = useState<{ text: string; error: boolean } | undefined>(undefined);
  const [progress, setProgress] = useState<{ backup?: BackupProgress; restore?: RestoreProgress }>({});
  const [pollRound, setPollRound] = useState(0);
  const [confirming, setConfirming] = useState<{ backup: BackupInfoWire; storage: StorageDescription | undefined } | undefined>(undefined);
  const wasActive = useRef(false);
  const dialog = useRef<HTMLDialogElement>(null);

  const hasPolicy = info.value?.config.PolicyName !== undefined;
  const policyStorage = info.value?.policy?.Storage;

  const chosenStorage = (s: Source = source, p: string = path): StorageDescription | undefined | 'missing' => {
    if (s === 'policy') return undefined;
    return p.trim() === '' ? 'missing' : { StorageKind: 'FileShare', Path: p.trim() };
  };

  // Defaults once the partition is known: its policy's storage (its path, when a file share), else a file share to name.
  useEffect(() => {
    if (!info.value) return;
    const s: Source = info.value.config.PolicyName ? 'policy' : 'fileshare';
    const p = info.value.policy?.Storage.StorageKind === 'FileShare' ? info.value.policy.Storage.Path : '';
    setSource(s);
    setPath(p);
    const storage = chosenStorage(s, p);
    if (storage !== 'missing') setQuery({ storage, start: '', end: '', latest: false });
  }, [info.value?.config.PolicyName]);

  const listed = useLoad(async (): Promise<Listed | undefined> => {
    if (!query || !info.value) return undefined;
    const from = localToDate(query.start);
    const to = localToDate(query.end);
    const filter = { latest: query.latest, ...(from ? { start: from } : {}), ...(to ? { end: to } : {}) };
    const storage = query.storage;
    const backups = storage === undefined
      ? await allPages((t) => c.listing.partitionBackups(partitionId, { ...filter, ...(t === undefined ? {} : { continuationToken: t }) }))
      : await allPages((t) => c.listing.backupsInStorage(storage, {
          EntityKind: 'Partition', ServiceName: info.value?.config.ServiceName ?? '', PartitionId: partitionId,
        }, { ...filter, ...(t === undefined ? {} : { continuationToken: t }) }));
    return { backups, storage };
  }, [query, info.value !== undefined]);

  usePoll(async () => {
    const [backup, restore] = await Promise.all([c.operations.backupProgress(partitionId), c.operations.restoreProgress(partitionId)]);
    setProgress({ backup, restore });
    const active = ACTIVE_BACKUP_STATES.includes(backup.BackupState) || ACTIVE_RESTORE_STATES.includes(restore.RestoreState);
    if (wasActive.current && !active) {
      // It just ended: what it changed (a new backup, the partition's health) is worth reading again.
      listed.reload();
      info.reload();
    }
    wasActive.current = active;
    return active;
  }, PROGRESS_INTERVAL_MS, pollRound);

  useEffect(() => {
    if (confirming && dialog.current && !dialog.current.open) dialog.current.showModal();
    if (!confirming && dialog.current?.open) dialog.current.close();
  }, [confirming]);

  const showBackups = (e: Event): void => {
    e.preventDefault();
    const storage = chosenStorage();
    if (storage === 'missing') {
      setMessage({ text: 'Give the path of a file share (inside the service\'s allowed roots) to list its backups.', error: true });
      return;
    }
    setMessage(undefined);
    setQuery({ storage, start, end, latest });
  };

  const backUp = async (): Promise<void> => {
    const storage = chosenStorage();
    if (storage === 'missing') {
      setMessage({ text: 'Give the path of a file share (inside the service\'s allowed roots) to back up to.', error: true });
      return;
    }
    try {
      await c.operations.backupPartition(partitionId, storage ? { storage } : {});
      setMessage({ text: 'Backup accepted; its progress follows above.', error: false });
      // The list then shows the storage the backup went to.
      setQuery({ storage, start, end, latest });
      setPollRound((r) => r + 1);
    } catch (err) {
      setMessage({ text: errorText(err), error: true });
    }
  };

  const restore = async (): Promise<void> => {
    if (!confirming) return;
    const { backup, storage } = confirming;
    setConfirming(undefined);
    try {
      await c.operations.restorePartition(partitionId, { backupId: backup.BackupId, backupLocation: backup.BackupLocation, ...(storage ? { storage } : {}) });
      setMessage({ text: `Restore of backup ${backup.BackupId} accepted; its progress follows above.`, error: false });
      setPollRound((r) => r + 1);
    } catch (err) {
      setMessage({ text: errorText(err), error: true });
    }
  };

  const v = info.value;
  const backups = (listed.value?.backups ?? []).filter((b) => type === 'All' || b.BackupType === type);
  const chains = chainNumbers(listed.value?.backups ?? []);
  const readOnly = !session.canChange;
  const readOnlyTitle = readOnly ? 'Readers cannot change anything' : undefined;
  const b = progress.backup;
  const r = progress.restore;

  return html`
    <p><a href="#/">← Hierarchy</a></p>
    <h1>Partition <code>${partitionId}</code></h1>
    ${info.error ? html`<p role="alert" class="error">${info.error}</p>` : null}
    ${v ? html`
      <dl class="facts">
        <div><dt>Service</dt><dd>${v.config.ServiceName}</dd></div>
        <div><dt>Keys</dt><dd>${keyRangeText(v.partition)}</dd></div>
        <div><dt>Epoch</dt><dd>${v.partition.CurrentConfigurationEpoch.DataLossVersion}/${v.partition.CurrentConfigurationEpoch.ConfigurationVersion}</dd></div>
        <div><dt>Policy</dt><dd>${protectionText(v.config)}${v.config.PolicyName ? html` · <a href="#/policies">policies</a> · <a href="#/retention">retention plan</a>` : null}</dd></div>
        <div><dt>Suspended</dt><dd>${suspensionText(v.config)}</dd></div>
        <div><dt>Health</dt><dd><${HealthBadge} state=${v.health?.AggregatedHealthState} /></dd></div>
      </dl>` : html`<p role="status">Loading…</p>`}

    <section aria-labelledby="progress-h">
      <h2 id="progress-h">Progress</h2>
      <dl class="progress" aria-live="polite">
        ${b ? html`<${ProgressLine} id="backup-state" label="Backup" state=${b.BackupState} time=${b.TimeStampUtc} failure=${b.FailureError} transfer=${transferText(b)}
          extra=${b.BackupState === 'Success' ? `backup ${b.BackupId}, LSN ${b.LsnOfLastBackupRecord}` : undefined} />` : null}
        ${r ? html`<${ProgressLine} id="restore-state" label="Restore" state=${r.RestoreState} time=${r.TimeStampUtc} failure=${r.FailureError} transfer=${transferText(r)}
          extra=${r.RestoreState === 'Success' ? `restored to LSN ${r.RestoredLsn}, epoch ${epochText(r.RestoredEpoch)}` : undefined} />` : null}
      </dl>
    </section>

    <section aria-labelledby="backups-h">
      <h2 id="backups-h">Backups</h2>
      <form class="filters" onSubmit=${showBackups}>
        <fieldset>
          <legend>Storage</legend>
          ${hasPolicy ? html`
            <label class="inline"><input type="radio" name="source" value="policy" checked=${source === 'policy'} onChange=${() => setSource('policy')} />
              The policy's storage (${policyStorage ? `${policyStorage.StorageKind}${policyStorage.StorageKind === 'FileShare' ? ` ${policyStorage.Path}` : ''}` : v?.config.PolicyName})</label>
            <label class="inline"><input type="radio" name="source" value="fileshare" checked=${source === 'fileshare'} onChange=${() => setSource('fileshare')} /> A file share</label>` : null}
          <label for="share-path">File share path</label>
          <input id="share-path" type="text" spellcheck="false" placeholder="/var/lib/lifeboat/backups/…" value=${path} disabled=${source !== 'fileshare'}
            onInput=${(e: Event) => setPath((e.target as HTMLInputElement).value)} />
        </fieldset>
        <fieldset>
          <legend>Filter</legend>
          <label for="from">From</label><input id="from" type="datetime-local" value=${start} onInput=${(e: Event) => setStart((e.target as HTMLInputElement).value)} />
          <label for="to">To</label><input id="to" type="datetime-local" value=${end} onInput=${(e: Event) => setEnd((e.target as HTMLInputElement).value)} />
          <label for="type">Type</label>
          <select id="type" value=${type} onChange=${(e: Event) => setType((e.target as HTMLSelectElement).value as 'All' | 'Full' | 'Incremental')}>
            <option value="All">All</option><option value="Full">Full</option><option value="Incremental">Incremental</option>
          </select>
          <label class="inline"><input type="checkbox" checked=${latest} onChange=${(e: Event) => setLatest((e.target as HTMLInputElement).checked)} /> Latest only</label>
        </fieldset>
        <div class="actions">
          <button type="submit">Show backups</button>
          <button type="button" class="primary" onClick=${() => void backUp()} disabled=${readOnly} title=${readOnlyTitle}>Back up now</button>
        </div>
      </form>
      ${message ? html`<p role=${message.error ? 'alert' : 'status'} class=${message.error ? 'error' : 'ok'}>${message.text}</p>` : null}
      ${listed.error ? html`<p role="alert" class="error">${listed.error}</p>` : null}
      ${listed.value ? html`
        <table class="backups">
          <caption>${backups.length} backup${backups.length === 1 ? '' : 's'} ${listed.value.storage ? `in ${listed.value.storage.StorageKind === 'FileShare' ? listed.value.storage.Path : listed.value.storage.StorageKind}` : 'in the backup index'}</caption>
          <thead><tr><th scope="col">Created</th><th scope="col">Type</th><th scope="col">Chain</th><th scope="col">LSN</th><th scope="col">Epoch</th><th scope="col">Backup</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            ${backups.map((bk) => html`
              <tr class=${bk.BackupType === 'Incremental' ? 'incremental' : 'full'}>
                <td>${timeText(bk.CreationTimeUtc)}</td>
                <td>${bk.BackupType === 'Incremental' ? html`<span aria-hidden="true">↳ </span>Incremental` : 'Full'}</td>
                <td title=${bk.BackupChainId}>#${chains.get(bk.BackupChainId) ?? '?'} <span class="muted">${shortId(bk.BackupChainId)}</span></td>
                <td>${bk.LsnOfLastBackupRecord}</td>
                <td>${epochText(bk.EpochOfLastBackupRecord)}</td>
                <td><code title=${bk.BackupLocation}>${bk.BackupId}</code></td>
                <td><button type="button" aria-label=${`Restore backup ${bk.BackupId}`} disabled=${readOnly} title=${readOnlyTitle}
                  onClick=${() => setConfirming({ backup: bk, storage: listed.value?.storage })}>Restore…</button></td>
              </tr>`)}
          </tbody>
        </table>` : listed.loading && query ? html`<p role="status">Loading backups…</p>` : null}
    </section>

    <dialog ref=${dialog} aria-labelledby="confirm-h" onClose=${() => setConfirming(undefined)}>
      ${confirming ? html`
        <h2 id="confirm-h">Restore partition ${shortId(partitionId)}…?</h2>
        <p>
          The partition's state is replaced by backup <code>${confirming.backup.BackupId}</code>
          (${confirming.backup.BackupType}, taken ${timeText(confirming.backup.CreationTimeUtc)}, LSN ${confirming.backup.LsnOfLastBackupRecord}).
        </p>
        <p class="warning"><strong>Every change made to this partition after that backup (after LSN ${confirming.backup.LsnOfLastBackupRecord}, ${timeText(confirming.backup.CreationTimeUtc)}) will be lost.</strong></p>
        <div class="actions">
          <button type="button" onClick=${() => setConfirming(undefined)} autofocus>Cancel</button>
          <button type="button" class="danger" onClick=${() => void restore()}>Restore and lose later changes</button>
        </div>` : null}
    </dialog>`;
}
