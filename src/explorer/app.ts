/** The explorer's frame: sign-in, the navigation, and the page the address's hash names (#/partition/<id>, #/policies, …). */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { AuditPage } from './pages/audit.ts';
import { HierarchyPage } from './pages/hierarchy.ts';
import { OperationsPage } from './pages/operations.ts';
import { PartitionPage } from './pages/partition.ts';
import { PoliciesPage } from './pages/policies.ts';
import { RetentionPage } from './pages/retention.ts';
import { SignInPage } from './pages/sign-in.ts';
import { type Session, errorText, forgetToken, redeemCode, signIn, storedToken, takeTokenFromLink } from './session.ts';

/** The hash's path segments: '#/partition/<id>' → ['partition', '<id>']. */
function useRoute(): string[] {
  const read = (): string[] => location.hash.replace(/^#\/?/, '').split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = (): void => setRoute(read());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

const PAGES = [
  { path: '', label: 'Hierarchy' },
  { path: 'policies', label: 'Policies' },
  { path: 'retention', label: 'Retention' },
  { path: 'operations', label: 'Operations' },
  { path: 'audit', label: 'Audit log', adminOnly: true },
] as const;

export function App() {
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [starting, setStarting] = useState(true);
  const [error, setError] = useState<string | undefined>(undefined);
  const route = useRoute();

  const useToken = async (given: string | { readonly code: string }): Promise<void> => {
    try {
      const token = typeof given === 'string' ? given : await redeemCode(given.code);
      setSession(await signIn(token));
      setError(undefined);
    } catch (err) {
      forgetToken();
      setSession(undefined);
      setError(errorText(err));
    }
  };

  useEffect(() => {
    const link = takeTokenFromLink();
    const given = link ? ('code' in link ? link : link.token) : storedToken();
    void (given ? useToken(given) : Promise.resolve()).finally(() => setStarting(false));
    // A sign-in link opened in a tab that already shows the explorer changes only the hash.
    const linked = (): void => {
      const l = takeTokenFromLink();
      if (l) void useToken('code' in l ? l : l.token);
    };
    window.addEventListener('hashchange', linked);
    return () => window.removeEventListener('hashchange', linked);
  }, []);

  if (starting) return html`<main class="page"><p role="status">Signing in…</p></main>`;
  if (!session) return html`<${SignInPage} error=${error} onToken=${useToken} />`;

  const signOut = (): void => {
    forgetToken();
    setSession(undefined);
  };
  const [first, second] = route;
  const current = first ?? '';
  return html`
    <header class="top">
      <a class="brand" href="#/">Lifeboat explorer</a>
      <nav aria-label="Pages">
        <ul>
          ${PAGES.filter((p) => !('adminOnly' in p) || session.canChange).map((p) => html`
            <li><a href=${`#/${p.path}`} aria-current=${current === p.path || (p.path === '' && current === 'partition') ? 'page' : undefined}>${p.label}</a></li>`)}
        </ul>
      </nav>
      <p class="who">
        Signed in as <strong>${session.me.Name}</strong> (${session.me.Role}${session.canChange ? '' : ': read only'})
        <button type="button" onClick=${signOut}>Sign out</button>
      </p>
    </header>
    <main class="page">
      ${current === '' ? html`<${HierarchyPage} session=${session} />`
      : current === 'partition' && second ? html`<${PartitionPage} key=${second} session=${session} partitionId=${second} />`
      : current === 'policies' ? html`<${PoliciesPage} session=${session} />`
      : current === 'retention' ? html`<${RetentionPage} session=${session} />`
      : current === 'operations' ? html`<${OperationsPage} session=${session} />`
      : current === 'audit' ? html`<${AuditPage} session=${session} />`
      : html`<h1>Not found</h1><p>The explorer has no page <code>${location.hash}</code>. <a href="#/">Go to the hierarchy</a>.</p>`}
    </main>`;
}
