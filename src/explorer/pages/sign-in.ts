/** Sign in with a pasted token. */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';

export function SignInPage({ error, onToken }: { error: string | undefined; onToken: (token: string) => Promise<void> }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = (e: Event): void => {
    e.preventDefault();
    if (token.trim() === '') return;
    setBusy(true);
    void onToken(token.trim()).finally(() => setBusy(false));
  };
  return html`
    <main class="page sign-in">
      <h1>Lifeboat explorer</h1>
      <form onSubmit=${submit}>
        <label for="token">Access token</label>
        <input id="token" type="password" autocomplete="off" spellcheck="false" required value=${token} onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled=${busy}>Sign in</button>
        <p class="hint">
          An admin or reader token (<code>lifeboat token create</code>; the first admin token is in <code>&lt;data-dir&gt;/admin.token</code>).
          It is kept in this tab only and sent with each call to the service; closing the tab forgets it.
        </p>
        ${error ? html`<p role="alert" class="error">${error}</p>` : null}
      </form>
    </main>`;
}
