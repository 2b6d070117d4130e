/** Backup policies: the list (secrets masked) and where each is applied, create, edit, delete, and apply one to an entity (EnableBackup). */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { EntityRef } from '../../client/lifeboat-client.ts';
import type { BackupPolicyWire } from '../../wire/policy.ts';
import type { BackupEntityWire } from '../../wire/protection.ts';
import { entityText } from '../format.ts';
import { allPages } from '../../client/lifeboat-client.ts';
import { useLoad } from '../poll.ts';
import { type Session, errorText } from '../session.ts';
import { loadTree, partitionsOf } from '../tree.ts';
import { PolicyForm } from './policy-form.ts';

/** The storage as the service answered it: its kind and where, secrets as the service masked them ("****"). */
function storageText(p: BackupPolicyWire): string {
  const s = p.Storage;
  switch (s.StorageKind) {
    case 'FileShare': return `File share ${s.Path}${s.PrimaryPassword ? ` (password ${s.PrimaryPassword})` : ''}`;
    case 'AzureBlobStore': return `Azure Blob container ${s.ContainerName} (connection string ${s.ConnectionString})`;
    case 'ManagedIdentityAzureBlobStore': return `Azure Blob ${s.BlobServiceUri} container ${s.ContainerName} (managed identity)`;
    case 'S3': return `S3 bucket ${s.Bucket}${s.Endpoint ? ` at ${s.Endpoint}` : ''}${s.SecretAccessKey ? ` (secret key ${s.SecretAccessKey})` : ''}`;
  }
}

function scheduleText(p: BackupPolicyWire): string {
  const s = p.Schedule;
  const inc = p.MaxIncrementalBackups > 0 ? `, up to ${p.MaxIncrementalBackups} incrementals per full` : ', full backups only';
  if (s.ScheduleKind === 'FrequencyBased') return `Every ${s.Interval}${inc}`;
  const times = s.RunTimes.map((t) => t.slice(11, 16)).join(', ');
  return `${s.ScheduleFrequencyType}${s.RunDays?.length ? ` on ${s.RunDays.join(', ')}` : ''} at ${times} UTC${inc}`;
}

function retentionText(p: BackupPolicyWire): string {
  const r = p.RetentionPolicy;
  if (!r) return 'Kept for ever';
  return `${r.RetentionDuration}${r.MinimumNumberOfBackups ? `, at least ${r.MinimumNumberOfBackups}` : ''}`;
}

/** Apply a policy to an application, a service or a partition (EnableBackup). */
function ApplyForm({ session, policies, onApplied }: { session: Session; policies: readonly BackupPolicyWire[]; onApplied: () => void }) {
  const tree = useLoad(() => loadTree(session.client), [session]);
  const [policy, setPolicy] = useState('');
  const [entity, setEntity] = useState('');
  const [message, setMessage] = useState<{ text: string; error: boolean } | undefined>(undefined);
  const entities: Array<{ value: string; label: string; ref: EntityRef }> = [];
  for (const a of tree.value ?? []) {
    entities.push({ value: `Application:${a.application.Id}`, label: `Application ${a.application.Name}`, ref: { kind: 'Application', id: a.application.Id } });
    for (const s of a.services) entities.push({ value: `Service:${s.service.Id}`, label: `Service ${s.service.Name}`, ref: { kind: 'Service', id: s.service.Id } });
  }
  for (const { partition } of partitionsOf(tree.value ?? [])) {
    const id = partition.PartitionInformation.Id;
    entities.push({ value: `Partition:${id}`, label: `Partition ${id}`, ref: { kind: 'Partition', id } });
  }
  const chosenPolicy = policy || policies[0]?.Name || '';
  const chosenEntity = entities.find((e) => e.value === entity) ?? entities[0];
  const apply = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!chosenPolicy || !chosenEntity) return;
    try {
      await session.client.protection.enableBackup(chosenEntity.ref, chosenPolicy);
      setMessage({ text: `Policy ${chosenPolicy} applied to ${chosenEntity.label}.`, error: false });
      onApplied();
    } catch (err) {
      setMessage({ text: errorText(err), error: true });
    }
  };
  return html`
    <form class="apply" onSubmit=${(e: Event) => void apply(e)} aria-labelledby="apply-h">
      <h2 id="apply-h">Apply a policy</h2>
      <fieldset disabled=${!session.canChange || policies.length === 0}>
        <div class="field">
          <label for="apply-policy">Policy</label>
          <select id="apply-policy" value=${chosenPolicy} onChange=${(e: Event) => setPolicy((e.target as HTMLSelectElement).value)}>
            ${policies.map((p) => html`<option value=${p.Name}>${p.Name}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="apply-entity">To</label>
          <select id="apply-entity" value=${chosenEntity?.value ?? ''} onChange=${(e: Event) => setEntity((e.target as HTMLSelectElement).value)}>
            ${entities.map((x) => html`<option value=${x.value}>${x.label}</option>`)}
          </select>
        </div>
        <div class="actions"><button type="submit" class="primary" title=${session.canChange ? undefined : 'Readers cannot change anything'}>Enable backup</button></div>
      </fieldset>
      ${message ? html`<p role=${message.error ? 'alert' : 'status'} class=${message.error ? 'error' : 'ok'}>${message.text}</p>` : null}
    </form>`;
}

export function PoliciesPage({ session }: { session: Session }) {
  const c = session.client;
  const list = useLoad(async () => {
    const policies = await allPages((t) => c.policies.list(t === undefined ? {} : { continuationToken: t }));
    const applied = await Promise.all(policies.map((p) => allPages((t) => c.policies.enabledEntities(p.Name, t === undefined ? {} : { continuationToken: t })).catch((): BackupEntityWire[] => [])));
    return policies.map((policy, i) => ({ policy, entities: applied[i] ?? [] }));
  }, [session]);
  const [form, setForm] = useState<{ editing: BackupPolicyWire | undefined } | undefined>(undefined);
  const [message, setMessage] = useState<{ text: string; error: boolean } | undefined>(undefined);
  const readOnly = !session.canChange;
  const readOnlyTitle = readOnly ? 'Readers cannot change anything' : undefined;

  const save = async (policy: BackupPolicyWire, validateConnection: boolean): Promise<void> => {
    const editing = form?.editing;
    try {
      if (editing) await c.policies.update(editing.Name, policy, { validateConnection });
      else await c.policies.create(policy, { validateConnection });
      setMessage({ text: `Policy ${policy.Name} ${editing ? 'saved' : 'created'}.`, error: false });
      setForm(undefined);
      list.reload();
    } catch (err) {
      setMessage({ text: errorText(err), error: true });
    }
  };
  const remove = async (name: string): Promise<void> => {
    if (!window.confirm(`Delete policy ${name}? It must not be applied to anything.`)) return;
    try {
      await c.policies.delete(name);
      setMessage({ text: `Policy ${name} deleted.`, error: false });
      list.reload();
    } catch (err) {
      setMessage({ text: errorText(err), error: true });
    }
  };

  return html`
    <div class="title-row">
      <h1>Policies</h1>
      <button type="button" class="primary" disabled=${readOnly || form !== undefined} title=${readOnlyTitle} onClick=${() => setForm({ editing: undefined })}>New policy</button>
    </div>
    ${message ? html`<p role=${message.error ? 'alert' : 'status'} class=${message.error ? 'error' : 'ok'}>${message.text}</p>` : null}
    ${list.error ? html`<p role="alert" class="error">${list.error}</p>` : null}
    ${form ? html`<${PolicyForm} key=${form.editing?.Name ?? '(new)'} editing=${form.editing} disabled=${readOnly} onSave=${save} onCancel=${() => setForm(undefined)} />` : null}
    ${list.value?.length === 0 ? html`<p>No policy yet.</p>` : null}
    ${list.value && list.value.length > 0 ? html`
      <table class="policies">
        <caption class="visually-hidden">Backup policies</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Schedule</th><th scope="col">Storage</th><th scope="col">Retention</th><th scope="col">Auto-restore</th><th scope="col">Applied to</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          ${list.value.map(({ policy: p, entities }) => html`
            <tr>
              <th scope="row">${p.Name}</th>
              <td>${scheduleText(p)}</td>
              <td class="storage">${storageText(p)}</td>
              <td>${retentionText(p)}</td>
              <td>${p.AutoRestoreOnDataLoss ? 'Yes' : 'No'}</td>
              <td>${entities.length === 0 ? html`<span class="muted">Nothing</span>` : html`<ul class="plain">${entities.map((e) => html`<li>${entityText(e)}</li>`)}</ul>`}</td>
              <td class="row-actions">
                <button type="button" aria-label=${`Edit policy ${p.Name}`} disabled=${readOnly || form !== undefined} title=${readOnlyTitle} onClick=${() => setForm({ editing: p })}>Edit</button>
                <button type="button" class="danger" aria-label=${`Delete policy ${p.Name}`} disabled=${readOnly} title=${readOnlyTitle} onClick=${() => void remove(p.Name)}>Delete</button>
              </td>
            </tr>`)}
        </tbody>
      </table>` : null}
    ${list.value ? html`<${ApplyForm} session=${session} policies=${list.value.map((x) => x.policy)} onApplied=${list.reload} />` : null}`;
}
