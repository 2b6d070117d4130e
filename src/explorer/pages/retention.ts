/** The retention plan of every partition whose policy deletes old backups: what a run would keep and delete now, each with its reason. */
import { html } from 'htm/preact';
import type { RetentionDecisionWire, RetentionPlanWire } from '../../wire/backups.ts';
import { timeText } from '../format.ts';
import { allPages } from '../../client/lifeboat-client.ts';
import { useLoad } from '../poll.ts';
import type { Session } from '../session.ts';
import { loadTree, mapLimited, partitionsOf } from '../tree.ts';

type Row = { readonly partitionId: string; readonly serviceName: string; readonly plan?: RetentionPlanWire; readonly error?: string };

async function loadPlans(session: Session): Promise<Row[]> {
  const c = session.client;
  const [tree, policies] = await Promise.all([loadTree(c), allPages((t) => c.policies.list(t === undefined ? {} : { continuationToken: t }))]);
  const retaining = new Set(policies.filter((p) => p.RetentionPolicy !== undefined).map((p) => p.Name));
  const rows = await mapLimited(partitionsOf(tree), 8, async ({ serviceName, partition }): Promise<Row | undefined> => {
    const partitionId = partition.PartitionInformation.Id;
    const config = await c.protection.partitionConfiguration(partitionId);
    // A partition whose policy keeps everything has no plan worth asking the storage for.
    if (!config.PolicyName || !retaining.has(config.PolicyName)) return undefined;
    try {
      return { partitionId, serviceName, plan: await c.listing.retentionPlan(partitionId) };
    } catch (err) {
      return { partitionId, serviceName, error: err instanceof Error ? err.message : String(err) };
    }
  });
  return rows.filter((r): r is Row => r !== undefined);
}

function Decisions({ title, items }: { title: string; items: readonly RetentionDecisionWire[] }) {
  return html`
    <details>
      <summary>${title} (${items.length})</summary>
      ${items.length === 0 ? html`<p class="muted">None.</p>` : html`
        <table>
          <thead><tr><th scope="col">Created</th><th scope="col">Type</th><th scope="col">Backup</th><th scope="col">Reason</th></tr></thead>
          <tbody>${items.map((d) => html`<tr><td>${timeText(d.CreationTimeUtc)}</td><td>${d.BackupType}</td><td><code>${d.BackupId}</code></td><td>${d.Reason}</td></tr>`)}</tbody>
        </table>`}
    </details>`;
}

export function RetentionPage({ session }: { session: Session }) {
  const rows = useLoad(() => loadPlans(session), [session]);
  return html`
    <div class="title-row">
      <h1>Retention plan</h1>
      <button type="button" onClick=${rows.reload} disabled=${rows.loading}>Refresh</button>
    </div>
    <p class="hint">What the retention sweeper would keep and delete if it ran now, for each partition whose policy has a retention period.</p>
    ${rows.error ? html`<p role="alert" class="error">${rows.error}</p>` : null}
    ${rows.loading && !rows.value ? html`<p role="status">Loading…</p>` : null}
    ${rows.value?.length === 0 ? html`<p>No partition has a policy with a retention period.</p>` : null}
    ${rows.value?.map((r) => html`
      <section class="plan" aria-label=${`Retention of partition ${r.partitionId}`}>
        <h2><a href=${`#/partition/${r.partitionId}`}>${r.partitionId}</a> <small class="muted">${r.serviceName}</small></h2>
        ${r.error ? html`<p role="alert" class="error">${r.error}</p>` : null}
        ${r.plan ? html`
          <p>
            Policy <strong>${r.plan.PolicyName}</strong>: keep ${r.plan.RetentionDuration}${r.plan.MinimumNumberOfBackups ? `, at least ${r.plan.MinimumNumberOfBackups}` : ''};
            deletes what is older than ${timeText(r.plan.CutoffUtc)}. Last run ${timeText(r.plan.LastRunUtc)}, next ${timeText(r.plan.NextRunUtc)}.
          </p>
          ${r.plan.LastError ? html`<p class="error">Last run failed: ${r.plan.LastError}</p>` : null}
          <${Decisions} title="Kept" items=${r.plan.Keep} />
          <${Decisions} title="To delete" items=${r.plan.Delete} />` : null}
      </section>`)}`;
}
