/** The audit log (admins only): every change asked of the service, who asked, and what became of it; newest first. */
import { html } from 'htm/preact';
import type { AuditEntryWire } from '../../wire/access.ts';
import { timeText } from '../format.ts';
import { useLoad } from '../poll.ts';
import type { Session } from '../session.ts';

/** The page shows at most this many of the newest entries. */
const SHOWN = 500;

async function newestEntries(session: Session): Promise<AuditEntryWire[]> {
  // The log pages oldest first; the newest are at its end.
  const all: AuditEntryWire[] = [];
  let token: string | undefined;
  do {
    const page = await session.client.access.auditLog(token === undefined ? {} : { continuationToken: token });
    all.push(...page.Items);
    if (all.length > SHOWN) all.splice(0, all.length - SHOWN);
    token = page.ContinuationToken || undefined;
  } while (token !== undefined);
  return all.reverse();
}

export function AuditPage({ session }: { session: Session }) {
  return session.canChange ? html`<${AuditLog} session=${session} />` : html`<h1>Audit log</h1><p>The audit log is for admins.</p>`;
}

function AuditLog({ session }: { session: Session }) {
  const entries = useLoad(() => newestEntries(session), [session]);
  return html`
    <div class="title-row">
      <h1>Audit log</h1>
      <button type="button" onClick=${entries.reload} disabled=${entries.loading}>Refresh</button>
    </div>
    ${entries.error ? html`<p role="alert" class="error">${entries.error}</p>` : null}
    ${entries.loading && !entries.value ? html`<p role="status">Loading…</p>` : null}
    ${entries.value ? html`
      <table class="audit">
        <caption>The ${entries.value.length} newest entries</caption>
        <thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Who</th><th scope="col">Role</th><th scope="col">Call</th><th scope="col">Entity</th><th scope="col">Status</th><th scope="col">Outcome</th></tr></thead>
        <tbody>
          ${entries.value.map((a) => html`
            <tr class=${`outcome-${a.Outcome}`}>
              <td>${a.Seq}</td><td>${timeText(a.TimeUtc)}</td><td>${a.Principal}</td><td>${a.Role} <span class="muted">(${a.Via})</span></td>
              <td><code>${a.Method} ${a.Route}</code></td><td><code>${a.Entity}</code></td><td>${a.Status}</td><td>${a.Outcome}</td>
            </tr>`)}
        </tbody>
      </table>` : null}`;
}
