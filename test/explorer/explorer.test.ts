/**
 * The web explorer in a real Chromium against a real Lifeboat with the sample app: sign in (a
 * pasted token, a #token= link, the one-time #code= link), the hierarchy, a backup, a restore whose effect is read back
 * through the sample app, a policy with a secret (masked on the page, never sent back by the
 * service) applied to the service, and a reader who can change nothing. Along the way: no request
 * leaves the service's origin, no cookie is set, no CSP violation or script error happens.
 * Screenshots of the main pages go to $LIFEBOAT_SCREENSHOTS_DIR when it is set.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { TEST_ADMIN_TOKEN, assertSuccess, send } from '../support/api-http.ts';
import { launchChromium } from '../support/chromium.ts';
import { type TestLifeboat, startTestLifeboat } from '../support/lifeboat.ts';
import { SERVICE_ID, SERVICE_NAME } from '../support/sample.ts';

const WAIT = { timeout: 60_000 };
const SECRET_KEY = 'c2VjcmV0LWtleS1uZXZlci1zaG93bi0xMjM0NTY3ODkw';
const CONNECTION_STRING = `DefaultEndpointsProtocol=https;AccountName=explorertest;AccountKey=${SECRET_KEY};EndpointSuffix=core.windows.net`;

const shotsDir = process.env.LIFEBOAT_SCREENSHOTS_DIR;
/** Run in the page (a string: this file is not compiled with the DOM library). */
const STORED_TOKEN = "sessionStorage.getItem('lifeboat.explorer.token')";

/** A link of the explorer's navigation. */
const navLink = (page: Page, name: string) => page.getByRole('navigation').getByRole('link', { name, exact: true });

async function screenshot(page: Page, name: string): Promise<void> {
  if (!shotsDir) return;
  mkdirSync(shotsDir, { recursive: true });
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(shotsDir, `${name}.png`) });
}

/** What every page of a context did that it must not: requests elsewhere, CSP refusals, script errors. */
interface Watch {
  readonly foreign: string[];
  readonly problems: string[];
  /** Bodies of the service's JSON answers, to look for secrets in. */
  readonly answers: string[];
  /** Bodies the page sent. */
  readonly sent: Array<{ url: string; body: string }>;
}

function watch(context: BrowserContext, origin: string): Watch {
  const w: Watch = { foreign: [], problems: [], answers: [], sent: [] };
  context.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:')) w.foreign.push(url);
    const body = req.postData();
    if (body !== null) w.sent.push({ url, body });
  });
  context.on('response', (res) => {
    if ((res.headers()['content-type'] ?? '').startsWith('application/json')) {
      res.text().then((text) => w.answers.push(text), () => undefined);
    }
  });
  context.on('page', (page) => {
    page.on('pageerror', (err) => w.problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      // A refused call (403 for the reader) is logged by the browser as a failed load: expected.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) w.problems.push(`console: ${msg.text()}`);
    });
  });
  return w;
}

async function newContext(browser: NonNullable<Awaited<ReturnType<typeof launchChromium>>>, lb: TestLifeboat): Promise<{ context: BrowserContext; page: Page; w: Watch }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const w = watch(context, lb.url);
  const page = await context.newPage();
  return { context, page, w };
}

async function pasteToken(page: Page, lb: TestLifeboat, token: string): Promise<void> {
  await page.goto(`${lb.url}/explorer`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signInByPasting(page: Page, lb: TestLifeboat, token: string): Promise<void> {
  await pasteToken(page, lb, token);
  await page.getByText('Signed in as').waitFor(WAIT);
}

async function partitionIds(lb: TestLifeboat): Promise<string[]> {
  const page = await lb.client.hierarchy.listPartitions(SERVICE_ID);
  return page.Items.map((p) => p.PartitionInformation.Id).sort();
}

/** Polls a condition of the page (no timing is asserted: only that it comes true in the end). */
async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the web explorer in Chromium', () => {
  it('signs in, shows the hierarchy, backs up, restores, manages policies, and keeps readers read-only', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const lb = await startTestLifeboat(t);
    const sample = lb.sample;
    assert.ok(sample, 'the sample app runs');
    const admin = await newContext(browser, lb);
    const { page } = admin;

    await t.test('signs in with a pasted token, kept in sessionStorage and no cookie', async () => {
      await signInByPasting(page, lb, TEST_ADMIN_TOKEN);
      await page.getByText('(admin)').waitFor(WAIT);
      assert.equal(await page.evaluate(STORED_TOKEN), TEST_ADMIN_TOKEN);
      assert.deepEqual(await admin.context.cookies(), []);
    });

    await t.test('signs in once through the one-time #code= link lifeboat start prints', async () => {
      const link = (await lb.explorerSignInLink()) as string;
      const first = await newContext(browser, lb);
      await first.page.goto(link);
      await first.page.getByText('Signed in as').waitFor(WAIT);
      assert.equal(new URL(first.page.url()).hash, '#/', 'the code left the address');
      assert.equal(await first.page.evaluate(STORED_TOKEN), TEST_ADMIN_TOKEN);
      // The same link a second time: spent.
      const again = await newContext(browser, lb);
      await again.page.goto(link);
      await again.page.getByRole('alert').filter({ hasText: 'sign-in link was not accepted' }).waitFor(WAIT);
      assert.equal(await again.page.evaluate(STORED_TOKEN), null);
      await first.context.close();
      await again.context.close();
    });

    await t.test('signs in through a #token= link, which then leaves the address', async () => {
      const other = await newContext(browser, lb);
      await other.page.goto(`${lb.url}/explorer#token=${encodeURIComponent(TEST_ADMIN_TOKEN)}`);
      await other.page.getByText('Signed in as').waitFor(WAIT);
      assert.ok(!other.page.url().includes(TEST_ADMIN_TOKEN), `the token left the address: ${other.page.url()}`);
      assert.equal(new URL(other.page.url()).hash, '#/');
      // A bad token is refused with a message, and forgotten.
      const bad = await newContext(browser, lb);
      await pasteToken(bad.page, lb, 'lbt_no-such-token-000000000000000000000');
      await bad.page.getByRole('alert').filter({ hasText: 'did not accept this token' }).waitFor(WAIT);
      assert.equal(await bad.page.evaluate(STORED_TOKEN), null);
      await other.context.close();
      await bad.context.close();
    });

    const ids = await partitionIds(lb);
    await t.test('shows the 4 sample partitions', async () => {
      assert.equal(ids.length, 4);
      const rows = page.locator('table.partitions tbody tr');
      await until('4 partition rows', async () => (await rows.count()) === 4);
      const shown = (await page.locator('table.partitions tbody th a').allTextContents()).sort();
      assert.deepEqual(shown, ids);
      await page.getByRole('heading', { name: `Service ${SERVICE_NAME}` }).waitFor(WAIT);
      assert.equal(await rows.filter({ hasText: 'Not protected' }).count(), 4, 'no partition is protected yet');
    });

    // A key written before the backup and changed after it: the restore must bring the old value back.
    const put = await fetch(`${sample.url}/kv/explorer-key`, { method: 'PUT', body: 'before the backup' });
    assert.equal(put.status, 200);
    const pid = ((await put.json()) as { PartitionId: string }).PartitionId;

    await t.test('backs up a partition to a file share and shows Success', async () => {
      await page.getByRole('link', { name: pid }).click();
      await page.getByRole('heading', { name: `Partition ${pid}` }).waitFor(WAIT);
      await page.getByLabel('File share path').fill(lb.share);
      await page.getByRole('button', { name: 'Back up now' }).click();
      await page.locator('#backup-state', { hasText: 'Success' }).waitFor(WAIT);
      await page.getByRole('button', { name: /^Restore backup / }).first().waitFor(WAIT);
      const progress = await lb.client.operations.backupProgress(pid);
      assert.equal(progress.BackupState, 'Success');
      await page.getByText(progress.BackupId).first().waitFor(WAIT);
    });

    await t.test('restores the backup after a confirmation that says what will be lost, and the data is back', async () => {
      assert.equal((await fetch(`${sample.url}/kv/explorer-key`, { method: 'PUT', body: 'after the backup' })).status, 200);
      assert.equal(await (await fetch(`${sample.url}/kv/explorer-key`)).text(), 'after the backup');
      await page.getByRole('button', { name: /^Restore backup / }).first().click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor(WAIT);
      assert.match(await dialog.innerText(), /Every change made to this partition after that backup .* will be lost/);
      // Cancel first: nothing happens.
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden', ...WAIT });
      assert.equal((await lb.client.operations.restoreProgress(pid)).RestoreState, 'Invalid');
      await page.getByRole('button', { name: /^Restore backup / }).first().click();
      await page.getByRole('button', { name: 'Restore and lose later changes' }).click();
      await page.locator('#restore-state', { hasText: 'Success' }).waitFor(WAIT);
      assert.equal(await (await fetch(`${sample.url}/kv/explorer-key`)).text(), 'before the backup');
      await screenshot(page, 'partition');
    });

    await t.test('creates a policy with a secret, masked on the page and never sent back; edits it; applies it to the service', async () => {
      await navLink(page, 'Policies').click();
      await page.getByRole('heading', { name: 'Policies' }).waitFor(WAIT);
      await page.getByRole('button', { name: 'New policy' }).click();
      await page.getByLabel('Name', { exact: true }).fill('azure-daily');
      // A day between backups: the scheduler takes none (to a storage it cannot reach) while the test runs.
      await page.getByLabel('Interval').fill('PT24H');
      await page.getByLabel('Storage kind').selectOption('AzureBlobStore');
      await page.getByLabel('Connection string').fill(CONNECTION_STRING);
      await page.getByLabel('Container').fill('backups');
      await page.getByRole('button', { name: 'Create policy' }).click();
      await page.getByRole('status').filter({ hasText: 'Policy azure-daily created' }).waitFor(WAIT);
      const row = page.getByRole('row').filter({ hasText: 'azure-daily' });
      await row.waitFor(WAIT);
      assert.match(await row.innerText(), /connection string \*\*\*\*/);
      assert.ok(!(await page.content()).includes(SECRET_KEY), 'the page does not hold the secret');

      // Edit: the secret field starts empty and, left so, sends "****" (the service keeps its secret).
      await page.getByRole('button', { name: 'Edit policy azure-daily' }).click();
      assert.equal(await page.getByLabel('Connection string').inputValue(), '');
      await page.getByLabel('Incremental backups between full ones').fill('3');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'Policy azure-daily saved' }).waitFor(WAIT);
      await row.filter({ hasText: 'up to 3 incrementals' }).waitFor(WAIT);
      const update = admin.w.sent.find((s) => s.url.includes('/BackupPolicies/azure-daily/$/Update'));
      assert.ok(update, 'the edit was sent');
      assert.equal((JSON.parse(update.body) as { Storage: { ConnectionString: string } }).Storage.ConnectionString, '****');

      await page.getByLabel('Policy', { exact: true }).selectOption('azure-daily');
      await page.getByLabel('To', { exact: true }).selectOption({ label: `Service ${SERVICE_NAME}` });
      await page.getByRole('button', { name: 'Enable backup' }).click();
      await page.getByRole('status').filter({ hasText: `Policy azure-daily applied to Service ${SERVICE_NAME}` }).waitFor(WAIT);
      await row.filter({ hasText: `Service ${SERVICE_NAME}` }).waitFor(WAIT);
      assert.equal((await lb.client.protection.partitionConfiguration(pid)).PolicyName, 'azure-daily');
      // A policy in use cannot be deleted: the confirmation, then the service's refusal, shown.
      page.once('dialog', (d) => void d.accept());
      await page.getByRole('button', { name: 'Delete policy azure-daily' }).click();
      await page.getByRole('alert').filter({ hasText: 'FABRIC_E_BACKUP_IS_ENABLED' }).waitFor(WAIT);
      assert.equal((await lb.client.policies.list()).Items.length, 1);
      const stored = (await lb.client.policies.get('azure-daily')).Storage as { ConnectionString: string };
      assert.equal(stored.ConnectionString, '****', 'the service reads the secret back masked');
      await screenshot(page, 'policies');
      // Every JSON answer the page received, none with the secret.
      await until('the answers read', async () => admin.w.answers.length > 0);
      assert.ok(admin.w.answers.every((a) => !a.includes(SECRET_KEY)), 'no answer of the service carried the secret');

      await navLink(page, 'Hierarchy').click();
      await until('the hierarchy shows the policy', async () => (await page.locator('table.partitions tbody tr', { hasText: 'azure-daily (from Service)' }).count()) === 4);
      assert.match(await page.locator('section.app > .entity-line').innerText(), /Policy: Not protected/, 'the application itself has no policy');
      assert.match(await page.locator('section.service > .entity-line').innerText(), /Policy: azure-daily/, 'the service has it');
      await screenshot(page, 'hierarchy');
    });

    await t.test('shows the operations in flight, the retention plan and the audit log', async () => {
      await navLink(page, 'Operations').click();
      await page.getByText('No backup or restore is running.').waitFor(WAIT);
      await navLink(page, 'Retention').click();
      await page.getByText('No partition has a policy with a retention period.').waitFor(WAIT);
      await navLink(page, 'Audit log').click();
      await page.locator('table.audit').getByText('POST /Partitions/:partitionId/$/Restore').first().waitFor(WAIT);
    });

    await t.test('a reader sees everything and can change nothing; a forced call is refused', async () => {
      const created = assertSuccess(await send(lb.url, { method: 'POST', path: '/Lifeboat/$/Tokens/$/Create?api-version=6.4', body: { Role: 'reader', Name: 'explorer-reader' } }), 201) as { Token: string };
      const reader = await newContext(browser, lb);
      const rp = reader.page;
      // By keyboard this time: the form submits on Enter.
      await rp.goto(`${lb.url}/explorer`);
      await rp.getByLabel('Access token').fill(created.Token);
      await rp.getByLabel('Access token').press('Enter');
      await rp.getByText('(reader: read only)').waitFor(WAIT);
      assert.equal(await navLink(rp, 'Audit log').count(), 0, 'no audit log link for a reader');
      await until('4 partition rows', async () => (await rp.locator('table.partitions tbody tr').count()) === 4);

      await rp.getByRole('link', { name: pid }).click();
      await rp.locator('#backup-state', { hasText: 'Success' }).waitFor(WAIT);
      const backUp = rp.getByRole('button', { name: 'Back up now' });
      assert.ok(await backUp.isDisabled(), 'Back up now is disabled');
      const restore = rp.getByRole('button', { name: /^Restore backup / }).first();
      await restore.waitFor(WAIT);
      assert.ok(await restore.isDisabled(), 'Restore is disabled');

      // Forced: the button enabled by hand, then clicked; the service refuses.
      const before = await lb.client.operations.backupProgress(pid);
      await rp.evaluate("document.querySelectorAll('[disabled]').forEach((e) => e.removeAttribute('disabled'))");
      await backUp.click();
      await rp.getByRole('alert').filter({ hasText: 'E_ACCESSDENIED' }).waitFor(WAIT);
      const status = await rp.evaluate(`fetch('/Partitions/${pid}/$/Backup?api-version=6.4', {
        method: 'POST', headers: { authorization: 'Bearer ' + ${STORED_TOKEN} },
      }).then((r) => r.status)`);
      assert.equal(status, 403);
      assert.equal((await lb.client.operations.backupProgress(pid)).TimeStampUtc, before.TimeStampUtc, 'no backup was started');

      await navLink(rp, 'Policies').click();
      const edit = rp.getByRole('button', { name: 'Edit policy azure-daily' });
      await edit.waitFor(WAIT);
      for (const name of ['New policy', 'Edit policy azure-daily', 'Delete policy azure-daily', 'Enable backup']) {
        assert.ok(await rp.getByRole('button', { name }).isDisabled(), `${name} is disabled for a reader`);
      }
      assert.equal(await rp.getByRole('row').filter({ hasText: 'azure-daily' }).count(), 1, 'the reader sees the policy');
      assert.deepEqual(reader.w.foreign, []);
      assert.deepEqual(reader.w.problems, []);
      await reader.context.close();
    });

    assert.deepEqual(admin.w.foreign, [], 'the page asked for nothing outside the service');
    assert.deepEqual(admin.w.problems, [], 'no script error, no CSP refusal');
    await admin.context.close();
  });
});
