/**
 * A backup policy's form, to create one or edit one. Secrets are write-only: the service reads
 * them back as "****", so an edit shows the field empty and, left empty, sends "****" back, which
 * keeps the stored secret; nothing else of a secret ever reaches the page.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { SECRET_MASK, type StorageDescription } from '../../core/storage-description.ts';
import type { BackupPolicyWire, BackupScheduleWire } from '../../wire/policy.ts';

type Kind = StorageDescription['StorageKind'];

/** The form's fields, all text (inputs hold strings), by storage kind as Service Fabric names them. */
interface Fields {
  Name: string;
  AutoRestoreOnDataLoss: boolean;
  MaxIncrementalBackups: string;
  ScheduleKind: 'FrequencyBased' | 'TimeBased';
  Interval: string;
  ScheduleFrequencyType: 'Daily' | 'Weekly';
  RunTimes: string;
  RunDays: string;
  StorageKind: Kind;
  FriendlyName: string;
  Path: string;
  PrimaryUserName: string;
  PrimaryPassword: string;
  ConnectionString: string;
  ContainerName: string;
  ManagedIdentityType: string;
  BlobServiceUri: string;
  Bucket: string;
  Region: string;
  Endpoint: string;
  AccessKeyId: string;
  SecretAccessKey: string;
  ForcePathStyle: boolean;
  Retention: boolean;
  RetentionDuration: string;
  MinimumNumberOfBackups: string;
  ValidateConnection: boolean;
}

const SECRETS = new Set<keyof Fields>(['PrimaryPassword', 'ConnectionString', 'SecretAccessKey']);

function fieldsOf(p: BackupPolicyWire | undefined): Fields {
  const s = (p?.Storage ?? { StorageKind: 'FileShare', Path: '' }) as Record<string, unknown>;
  const str = (k: string): string => (typeof s[k] === 'string' && !SECRETS.has(k as keyof Fields) ? s[k] : '');
  const sched = p?.Schedule;
  return {
    Name: p?.Name ?? '',
    AutoRestoreOnDataLoss: p?.AutoRestoreOnDataLoss ?? false,
    MaxIncrementalBackups: String(p?.MaxIncrementalBackups ?? 0),
    ScheduleKind: sched?.ScheduleKind ?? 'FrequencyBased',
    Interval: sched?.ScheduleKind === 'FrequencyBased' ? sched.Interval : 'PT1H',
    ScheduleFrequencyType: sched?.ScheduleKind === 'TimeBased' ? sched.ScheduleFrequencyType : 'Daily',
    RunTimes: sched?.ScheduleKind === 'TimeBased' ? sched.RunTimes.map((t) => t.slice(11, 16)).join(', ') : '02:00',
    RunDays: sched?.ScheduleKind === 'TimeBased' ? (sched.RunDays ?? []).join(', ') : '',
    StorageKind: (s.StorageKind as Kind | undefined) ?? 'FileShare',
    FriendlyName: str('FriendlyName'), Path: str('Path'), PrimaryUserName: str('PrimaryUserName'), PrimaryPassword: '',
    ConnectionString: '', ContainerName: str('ContainerName'), ManagedIdentityType: str('ManagedIdentityType') || 'VMSS', BlobServiceUri: str('BlobServiceUri'),
    Bucket: str('Bucket'), Region: str('Region'), Endpoint: str('Endpoint'), AccessKeyId: str('AccessKeyId'), SecretAccessKey: '', ForcePathStyle: s.ForcePathStyle === true,
    Retention: p?.RetentionPolicy !== undefined,
    RetentionDuration: p?.RetentionPolicy?.RetentionDuration ?? 'P30D',
    MinimumNumberOfBackups: String(p?.RetentionPolicy?.MinimumNumberOfBackups ?? 0),
    ValidateConnection: false,
  };
}

/**
 * The policy the fields describe. A secret left empty on an edit of the same storage kind is sent
 * as "****": the service then keeps the one it has.
 */
function policyOf(f: Fields, editing: BackupPolicyWire | undefined): BackupPolicyWire {
  const keep = editing !== undefined && editing.Storage.StorageKind === f.StorageKind;
  const secret = (v: string): string | undefined => (v !== '' ? v : keep ? SECRET_MASK : undefined);
  const opt = (k: string, v: string | undefined): Record<string, string> => (v === undefined || v === '' ? {} : { [k]: v });
  const friendly = opt('FriendlyName', f.FriendlyName.trim());
  let storage: StorageDescription;
  switch (f.StorageKind) {
    case 'FileShare':
      storage = { StorageKind: 'FileShare', Path: f.Path.trim(), ...friendly, ...opt('PrimaryUserName', f.PrimaryUserName), ...opt('PrimaryPassword', secret(f.PrimaryPassword)) };
      break;
    case 'AzureBlobStore':
      storage = { StorageKind: 'AzureBlobStore', ConnectionString: secret(f.ConnectionString) ?? '', ContainerName: f.ContainerName.trim(), ...friendly };
      break;
    case 'ManagedIdentityAzureBlobStore':
      storage = { StorageKind: 'ManagedIdentityAzureBlobStore', ManagedIdentityType: f.ManagedIdentityType.trim(), BlobServiceUri: f.BlobServiceUri.trim(), ContainerName: f.ContainerName.trim(), ...friendly };
      break;
    case 'S3':
      storage = {
        StorageKind: 'S3', Bucket: f.Bucket.trim(), ...opt('Region', f.Region.trim()), ...opt('Endpoint', f.Endpoint.trim()), ...opt('AccessKeyId', f.AccessKeyId.trim()),
        ...opt('SecretAccessKey', secret(f.SecretAccessKey)), ...(f.ForcePathStyle ? { ForcePathStyle: true } : {}), ...friendly,
      };
      break;
  }
  const list = (v: string): string[] => v.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const schedule: BackupScheduleWire = f.ScheduleKind === 'FrequencyBased'
    ? { ScheduleKind: 'FrequencyBased', Interval: f.Interval.trim() }
    : {
        ScheduleKind: 'TimeBased', ScheduleFrequencyType: f.ScheduleFrequencyType, RunTimes: list(f.RunTimes).map((t) => `0001-01-01T${t.length === 5 ? `${t}:00` : t}Z`),
        ...(f.ScheduleFrequencyType === 'Weekly' ? { RunDays: list(f.RunDays) } : {}),
      };
  return {
    Name: f.Name.trim(), AutoRestoreOnDataLoss: f.AutoRestoreOnDataLoss, MaxIncrementalBackups: Number(f.MaxIncrementalBackups), Schedule: schedule, Storage: storage,
    ...(f.Retention ? { RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: f.RetentionDuration.trim(), MinimumNumberOfBackups: Number(f.MinimumNumberOfBackups) } } : {}),
  };
}

export interface PolicyFormProps {
  /** The policy being edited (as the service answered it, secrets "****"), or undefined for a new one. */
  readonly editing: BackupPolicyWire | undefined;
  readonly disabled: boolean;
  readonly onSave: (policy: BackupPolicyWire, validateConnection: boolean) => Promise<void>;
  readonly onCancel: () => void;
}

export function PolicyForm({ editing, disabled, onSave, onCancel }: PolicyFormProps) {
  const [f, setF] = useState<Fields>(() => fieldsOf(editing));
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Fields>(k: K, v: Fields[K]): void => setF((old) => ({ ...old, [k]: v }));
  const text = (k: keyof Fields, label: string, o: { required?: boolean; placeholder?: string; hint?: string } = {}) => {
    const id = `policy-${k}`;
    const secret = SECRETS.has(k);
    const kept = secret && editing !== undefined && editing.Storage.StorageKind === f.StorageKind;
    return html`
      <div class="field">
        <label for=${id}>${label}</label>
        <input id=${id} type=${secret ? 'password' : 'text'} autocomplete=${secret ? 'new-password' : 'off'} spellcheck="false" value=${f[k] as string}
          required=${(o.required ?? false) && !kept} readonly=${k === 'Name' && editing !== undefined}
          placeholder=${kept ? 'Stored secret kept unless you type a new one' : o.placeholder ?? ''}
          onInput=${(e: Event) => set(k, (e.target as HTMLInputElement).value as never)} />
        ${o.hint ? html`<small>${o.hint}</small>` : null}
      </div>`;
  };
  const check = (k: keyof Fields, label: string) => html`
    <label class="inline"><input type="checkbox" checked=${f[k] as boolean} onChange=${(e: Event) => set(k, (e.target as HTMLInputElement).checked as never)} /> ${label}</label>`;
  const submit = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    void onSave(policyOf(f, editing), f.ValidateConnection).finally(() => setBusy(false));
  };
  return html`
    <form class="policy-form" onSubmit=${submit} aria-labelledby="policy-form-h">
      <h2 id="policy-form-h">${editing ? `Edit policy ${editing.Name}` : 'New policy'}</h2>
      <fieldset disabled=${disabled || busy}>
        ${text('Name', 'Name', { required: true })}
        <fieldset>
          <legend>Schedule</legend>
          <div class="field">
            <label for="policy-ScheduleKind">Schedule kind</label>
            <select id="policy-ScheduleKind" value=${f.ScheduleKind} onChange=${(e: Event) => set('ScheduleKind', (e.target as HTMLSelectElement).value as Fields['ScheduleKind'])}>
              <option value="FrequencyBased">Every interval</option><option value="TimeBased">At times of day</option>
            </select>
          </div>
          ${f.ScheduleKind === 'FrequencyBased' ? text('Interval', 'Interval', { required: true, hint: 'ISO 8601, whole minutes: PT15M, PT1H, P1D.' }) : html`
            <div class="field">
              <label for="policy-ScheduleFrequencyType">Frequency</label>
              <select id="policy-ScheduleFrequencyType" value=${f.ScheduleFrequencyType} onChange=${(e: Event) => set('ScheduleFrequencyType', (e.target as HTMLSelectElement).value as 'Daily' | 'Weekly')}>
                <option value="Daily">Daily</option><option value="Weekly">Weekly</option>
              </select>
            </div>
            ${text('RunTimes', 'Run times (UTC)', { required: true, hint: 'HH:MM, comma separated.' })}
            ${f.ScheduleFrequencyType === 'Weekly' ? text('RunDays', 'Run days', { required: true, hint: 'e.g. Monday, Thursday.' }) : null}`}
          <div class="field">
            <label for="policy-MaxIncrementalBackups">Incremental backups between full ones</label>
            <input id="policy-MaxIncrementalBackups" type="number" min="0" max="255" value=${f.MaxIncrementalBackups} onInput=${(e: Event) => set('MaxIncrementalBackups', (e.target as HTMLInputElement).value)} />
          </div>
          ${check('AutoRestoreOnDataLoss', 'Restore automatically on data loss')}
        </fieldset>
        <fieldset>
          <legend>Storage</legend>
          <div class="field">
            <label for="policy-StorageKind">Storage kind</label>
            <select id="policy-StorageKind" value=${f.StorageKind} onChange=${(e: Event) => set('StorageKind', (e.target as HTMLSelectElement).value as Kind)}>
              <option value="FileShare">File share</option><option value="AzureBlobStore">Azure Blob (connection string)</option>
              <option value="ManagedIdentityAzureBlobStore">Azure Blob (managed identity)</option><option value="S3">S3</option>
            </select>
          </div>
          ${f.StorageKind === 'FileShare' ? html`${text('Path', 'Path', { required: true })}${text('PrimaryUserName', 'User name')}${text('PrimaryPassword', 'Password')}` : null}
          ${f.StorageKind === 'AzureBlobStore' ? html`${text('ConnectionString', 'Connection string', { required: true })}${text('ContainerName', 'Container', { required: true })}` : null}
          ${f.StorageKind === 'ManagedIdentityAzureBlobStore' ? html`${text('ManagedIdentityType', 'Managed identity type', { required: true })}${text('BlobServiceUri', 'Blob service URI', { required: true })}${text('ContainerName', 'Container', { required: true })}` : null}
          ${f.StorageKind === 'S3' ? html`${text('Bucket', 'Bucket', { required: true })}${text('Region', 'Region')}${text('Endpoint', 'Endpoint')}${text('AccessKeyId', 'Access key id')}${text('SecretAccessKey', 'Secret access key')}${check('ForcePathStyle', 'Path-style addressing')}` : null}
          ${text('FriendlyName', 'Friendly name')}
          ${check('ValidateConnection', 'Check that the service can reach the storage before saving')}
        </fieldset>
        <fieldset>
          <legend>Retention</legend>
          ${check('Retention', 'Delete old backups')}
          ${f.Retention ? html`${text('RetentionDuration', 'Keep backups for', { required: true, hint: 'ISO 8601: P30D, P1W.' })}
            <div class="field">
              <label for="policy-MinimumNumberOfBackups">But never fewer than</label>
              <input id="policy-MinimumNumberOfBackups" type="number" min="0" value=${f.MinimumNumberOfBackups} onInput=${(e: Event) => set('MinimumNumberOfBackups', (e.target as HTMLInputElement).value)} />
            </div>` : null}
        </fieldset>
        <div class="actions">
          <button type="submit" class="primary">${editing ? 'Save changes' : 'Create policy'}</button>
          <button type="button" onClick=${onCancel}>Cancel</button>
        </div>
      </fieldset>
    </form>`;
}
