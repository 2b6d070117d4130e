/**
 * The explorer's files as the service serves them, without a browser: the bundle builds with no
 * error or warning (so a broken explorer fails here, not on a user's first visit), the page and
 * its assets come with the strict headers, hold no data and name nothing outside the service, and
 * other paths under /explorer/ are a FabricError 404.
 */
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { describe, it } from 'node:test';
import { EXPLORER_CSP, buildExplorerAssets } from '../../src/api/explorer.ts';
import { assertFabricError, send } from '../support/api-http.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';

describe('the explorer\'s files', () => {
  it('bundles src/explorer without errors or warnings', async () => {
    const a = await buildExplorerAssets();
    assert.ok(a.script.length > 10_000, `the bundle holds preact, htm, the client and the pages (${a.script.length} bytes)`);
    assert.ok(a.style.includes('.visually-hidden'));
    // Only XML namespace names (preact's SVG and MathML support) look like URLs; nothing is fetched from elsewhere.
    const urls = [...a.script.matchAll(/https?:\/\/[^\s"'`)]+/g)].map((m) => m[0]);
    assert.deepEqual(urls.filter((u) => !u.startsWith('http://www.w3.org/')), []);
    assert.ok(!/@import|url\(\s*['"]?https?:/.test(a.style), 'the style sheet loads nothing');
  });

  it('serves the page, the script and the style sheet without a credential, with strict headers and no data', async (t) => {
    const lb = await startTestLifeboat(t);
    const pid = (await lb.client.hierarchy.listPartitions('SampleApp~MyStatefulService')).Items[0]?.PartitionInformation.Id as string;
    const files = [
      { path: '/explorer', type: /^text\/html/ }, { path: '/explorer/', type: /^text\/html/ }, { path: '/explorer/index.html', type: /^text\/html/ },
      { path: '/explorer/app.js', type: /^text\/javascript/ }, { path: '/explorer/style.css', type: /^text\/css/ },
    ];
    for (const f of files) {
      const a = await send(lb.url, { method: 'GET', path: f.path, token: null });
      assert.equal(a.status, 200, `${f.path}: ${a.status} ${a.text.slice(0, 200)}`);
      assert.match(a.headers.get('content-type') ?? '', f.type, f.path);
      assert.equal(a.headers.get('content-security-policy'), EXPLORER_CSP, f.path);
      assert.equal(a.headers.get('referrer-policy'), 'no-referrer', f.path);
      assert.equal(a.headers.get('cache-control'), 'no-store', f.path);
      assert.equal(a.headers.get('x-content-type-options'), 'nosniff', f.path);
      assert.equal(a.headers.get('set-cookie'), null, f.path);
      assert.ok(!a.text.includes(pid) && !a.text.includes('SampleApp'), `${f.path} holds no data`);
    }
    const page = (await send(lb.url, { method: 'GET', path: '/explorer', token: null })).text;
    assert.ok(!/<script(?![^>]*\bsrc=)/.test(page), 'no inline script');
    assert.ok(!/\sstyle=/.test(page), 'no inline style');
    assert.match(page, /src="\/explorer\/app\.js"/);
    assert.match(page, /href="\/explorer\/style\.css"/);

    for (const path of ['/explorer/nothing.js', '/explorer/..%2Fpackage.json', '/explorer/app.js/x', `/explorer/${pid}`]) {
      const a = await send(lb.url, { method: 'GET', path, token: null });
      assertFabricError(a, 404, 'FABRIC_E_ENDPOINT_NOT_FOUND', path);
      assert.ok(!a.text.includes(pid), `${path}: the 404 does not echo the path`);
    }
    // The explorer's routes are public, but the Host check still holds (fetch cannot set Host: node:http can).
    const status = await new Promise<number>((resolve, reject) => {
      httpGet(`${lb.url}/explorer`, { headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(status, 403);
  });
});
