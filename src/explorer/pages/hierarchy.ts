/** The hierarchy at a glance: each application, service and partition with its protection, suspension, last backup and health. */
import { html } from 'htm/preact';
import type { BackupInfoWire } from '../../wire/backups.ts';
import type { HealthState } from '../../wire/health.ts';
import type { BackupConfigurationInfoWire } from '../../wire/protection.ts';
import { protectionText, suspensionText, timeText } from '../format.ts';
import { allPages } from '../../client/lifeboat-client.ts';
import { type Loaded, useLoad } from '../poll.ts';
import type { Session } from '../session.ts';
import { type ApplicationNode, keyRangeText, loadTree, mapLimited } from '../tree.ts';

interface PartitionRow {
  readonly id: string;
  readonly keyRange: string;
  readonly config: BackupConfigurationInfoWire | undefined;
  readonly lastBackup: BackupInfoWire | undefined;
  readonly health: HealthState | undefined;
}

interface ServiceView {
  readonly name: string;
  readonly config: BackupConfigurationInfoWire | undefined;
  readonly partitions: readonly PartitionRow[];
}

interface ApplicationView {
  readonly name: string;
  readonly config: BackupConfigurationInfoWire | undefined;
  readonly services: readonly ServiceView[];
}

const orUndefined = <T>(p: Promise<T>): Promise<T | undefined> => p.catch(() => undefined);

async function loadView(session: Session): Promise<ApplicationView[]> {
  const c = session.client;
  const tree: ApplicationNode[] = await loadTree(c);
  return Promise.all(tree.map(async (a) => ({
    name: a.application.Name,
    // The list holds the entity itself and what overrides it below: pick the entity's own.
    config: (await orUndefined(c.protection.configuration({ kind: 'Application', id: a.application.Id })))?.Items.find((i) => i.Kind === 'Application'),
    services: await Promise.all(a.services.map(async (s) => {
      const [config, latest] = await Promise.all([
        orUndefined(c.protection.configuration({ kind: 'Service', id: s.service.Id })),
        orUndefined(allPages((t) => c.listing.serviceBackups(s.service.Id, { latest: true, ...(t === undefined ? {} : { continuationToken: t }) }))),
      ]);
      const partitions = await mapLimited(s.partitions, 8, async (p): Promise<PartitionRow> => {
        const id = p.PartitionInformation.Id;
        const [pc, health] = await Promise.all([orUndefined(c.protection.partitionConfiguration(id)), orUndefined(c.hierarchy.partitionHealth(id))]);
        return { id, keyRange: keyRangeText(p), config: pc, lastBackup: latest?.find((b) => b.PartitionInformation.Id === id), health: health?.AggregatedHealthState };
      });
      return { name: s.service.Name, config: config?.Items.find((i) => i.Kind === 'Service'), partitions };
    })),
  })));
}

export function HealthBadge({ state }: { state: HealthState | undefined }) {
  return state ? html`<span class=${`badge health-${state.toLowerCase()}`}>${state}</span>` : html`<span class="muted">unknown</span>`;
}

function EntityLine({ config }: { config: BackupConfigurationInfoWire | undefined }) {
  return html`<p class="entity-line">Policy: <strong>${protectionText(config)}</strong> · Suspended: ${suspensionText(config)}</p>`;
}

export function HierarchyPage({ session }: { session: Session }) {
  const view: Loaded<ApplicationView[]> = useLoad(() => loadView(session), [session]);
  return html`
    <div class="title-row">
      <h1>Hierarchy</h1>
      <button type="button" onClick=${view.reload} disabled=${view.loading}>Refresh</button>
    </div>
    ${view.error ? html`<p role="alert" class="error">${view.error}</p>` : null}
    ${view.loading && !view.value ? html`<p role="status">Loading…</p>` : null}
    ${view.value?.length === 0 ? html`<p>No application is registered yet: a host registers its services when it starts.</p>` : null}
    ${view.value?.map((a) => html`
      <section class="app" aria-label=${`Application ${a.name}`}>
        <h2>Application ${a.name}</h2>
        <${EntityLine} config=${a.config} />
        ${a.services.map((s) => html`
          <section class="service" aria-label=${`Service ${s.name}`}>
            <h3>Service ${s.name}</h3>
            <${EntityLine} config=${s.config} />
            <table class="partitions">
              <caption class="visually-hidden">Partitions of ${s.name}</caption>
              <thead><tr><th scope="col">Partition</th><th scope="col">Keys</th><th scope="col">Policy</th><th scope="col">Suspended</th><th scope="col">Last backup</th><th scope="col">Health</th></tr></thead>
              <tbody>
                ${s.partitions.map((p) => html`
                  <tr>
                    <th scope="row"><a href=${`#/partition/${p.id}`}>${p.id}</a></th>
                    <td class="keys">${p.keyRange}</td>
                    <td>${protectionText(p.config)}</td>
                    <td>${suspensionText(p.config)}</td>
                    <td>${p.lastBackup ? `${timeText(p.lastBackup.CreationTimeUtc)} (${p.lastBackup.BackupType})` : 'None'}</td>
                    <td><${HealthBadge} state=${p.health} /></td>
                  </tr>`)}
              </tbody>
            </table>
          </section>`)}
      </section>`)}`;
}
