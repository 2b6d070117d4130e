/**
 * The explorer's one-time sign-in link: its code is exchanged once, within 10 minutes, for the
 * bootstrap admin token, through a public route; a used, expired or unknown code is refused.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { isLifeboatError } from '../../src/core/errors.ts';
import { AccessService } from '../../src/service/access.ts';
import { TEST_ADMIN_TOKEN, assertFabricError, assertSuccess, send } from '../support/api-http.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { tempDir } from '../support/tmp.ts';

it('a sign-in code is good once, for 10 minutes, and only with a bootstrap token', async (t) => {
  const catalog = new SqliteCatalog(join(tempDir(t), 'c.sqlite'));
  t.after(() => catalog.close());
  let now = Date.parse('2026-12-07T10:00:00Z');
  const clock = { now: () => new Date(now) };
  const access = new AccessService({ store: catalog.access, clock, bootstrap: [{ name: 'bootstrap-admin', token: 'lbt_the-bootstrap-token-0000000000' }] });
  const refused = (err: unknown): boolean => isLifeboatError(err, 'LIFEBOAT_E_UNAUTHENTICATED');
  const code = (await access.createSignInCode()) as string;
  assert.match(code, /^lbs_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(await access.redeemSignInCode(code), { Token: 'lbt_the-bootstrap-token-0000000000' });
  await assert.rejects(access.redeemSignInCode(code), refused, 'spent');
  const late = (await access.createSignInCode()) as string;
  now += 10 * 60_000;
  await assert.rejects(access.redeemSignInCode(late), refused, 'expired after 10 minutes');
  await assert.rejects(access.redeemSignInCode('lbs_made-up'), refused, 'unknown');
  await assert.rejects(access.redeemSignInCode(42), (err: unknown) => isLifeboatError(err, 'E_INVALIDARG'));
  assert.equal(await new AccessService({ store: catalog.access, clock }).createSignInCode(), undefined, 'no bootstrap token, no link');
});

it('the link lifeboat start prints signs in once through the public SignIn route', async (t) => {
  const lb = await startTestLifeboat(t, { sample: false });
  const link = (await lb.explorerSignInLink()) as string;
  const m = new RegExp(`^${lb.url}/explorer/#code=(lbs_[A-Za-z0-9_-]+)$`).exec(link);
  assert.ok(m, link);
  const signIn = { method: 'POST', path: '/Lifeboat/$/SignIn?api-version=6.4', body: { Code: m[1] }, token: null } as const;
  assert.deepEqual(assertSuccess(await send(lb.url, signIn), 200), { Token: TEST_ADMIN_TOKEN });
  assertFabricError(await send(lb.url, signIn), 401, 'LIFEBOAT_E_UNAUTHENTICATED');
  assertFabricError(await send(lb.url, { ...signIn, body: {} }), 400, 'E_INVALIDARG');
  const audit = await lb.client.access.auditLog();
  assert.deepEqual(audit.Items.filter((a) => a.Route === '/Lifeboat/$/SignIn').map((a) => [a.Outcome, a.Status]), [['allowed', 200], ['refused', 401], ['refused', 400]], 'sign-ins are audited');
});
