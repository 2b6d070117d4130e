/**
 * Failover of the typed client between several instances of one Lifeboat (src/client/caller.ts),
 * over real loopback HTTP: a real Lifeboat, ports nobody listens on, and small node:http servers
 * that cut the connection, hang, answer 503 or record what reached them. And the `--service-url`
 * list the CLI and `lifeboat host` take.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { parseServiceUrls, serviceUrlOptions } from '../../src/cli/connection.ts';
import { UsageError } from '../../src/cli/output.ts';
import { LifeboatError } from '../../src/core/errors.ts';
import type { BackupPolicyWire } from '../../src/wire/policy.ts';
import { adminClient } from '../support/client.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { REPO_ROOT, freePort } from '../support/process-children.ts';

interface TestServer {
  readonly url: string;
  /** `METHOD path` of every request that reached it. */
  readonly seen: string[];
}

/** A node:http server on loopback that records each request and lets `handle` answer it (or not). */
async function server(t: TestContext, handle: (req: IncomingMessage, res: ServerResponse) => void, port = 0): Promise<TestServer> {
  const seen: string[] = [];
  const s = createServer((req, res) => {
    seen.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`);
    handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });
  t.after(() => new Promise<void>((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen };
}

/** Answers every request 200 with an empty page (enough for a list GET and a host-protocol POST). */
const answersOk = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ContinuationToken: '', Items: [] }));
};

/** Cuts the connection once the request has arrived: it may have been acted on. */
const cutsConnection = (req: IncomingMessage): void => {
  req.socket.destroy();
};

/** A URL nobody listens on: its connection is refused. */
async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

function policy(name: string, path: string): BackupPolicyWire {
  return {
    Name: name, AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 0,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' },
    Storage: { StorageKind: 'FileShare', Path: path },
    RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: 'P1D', MinimumNumberOfBackups: 1 },
  };
}

function client(urls: string[], timeoutMs?: number): ReturnType<typeof adminClient> {
  return adminClient(urls[0] as string, { baseUrls: urls, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
}

function isFetchTypeError(err: unknown): err is TypeError {
  return err instanceof TypeError && err.cause !== undefined;
}

describe('LifeboatClient with several service URLs', () => {
  it('moves past an instance that cannot be reached, and stays on the one that answered', async (t) => {
    const lb = await startTestLifeboat(t);
    const deadPort = await freePort();
    const api = client([`http://127.0.0.1:${deadPort}`, lb.url]);

    await t.test('a GET with the first URL dead answers from the second', async () => {
      const apps = await api.hierarchy.listApplications();
      assert.deepEqual(apps.Items.map((a) => a.Name), ['fabric:/SampleApp']);
    });

    await t.test('after that, calls start at the second: the first, alive again, sees nothing', async () => {
      const back = await server(t, answersOk, deadPort);
      assert.equal((await api.hierarchy.listApplications()).Items.length, 1, 'answered by the real Lifeboat, not the empty one');
      await api.policies.create(policy(`p-${randomUUID()}`, lb.share));
      assert.deepEqual(back.seen, []);
    });

    await t.test('a non-repeatable POST whose connection is refused moves on', async () => {
      const name = `refused-${randomUUID()}`;
      await client([await deadUrl(), lb.url]).policies.create(policy(name, lb.share));
      assert.equal((await lb.client.policies.get(name)).Name, name, 'the policy was made on the second instance');
    });

    await t.test('a repeatable (host-protocol) POST whose connection is cut after sending is sent again to the next', async () => {
      const cutter = await server(t, cutsConnection);
      const hostId = `h-${randomUUID()}`;
      const pid = randomUUID();
      const hostClient = client([cutter.url, lb.url]);
      await hostClient.hosts.register(hostId, {
        Services: [{
          Name: 'fabric:/FailoverApp/Svc', Scheme: { kind: 'Singleton' }, HasPersistedState: true,
          Partitions: [{ Id: pid, Info: { kind: 'Singleton' }, Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '0' }],
        }],
      });
      assert.deepEqual(cutter.seen, [`POST /Lifeboat/Hosts/${hostId}/$/Register`]);
      // Registered on the real one: it knows the partition.
      assert.equal((await lb.client.hierarchy.getPartition(pid)).PartitionInformation.Id, pid);
    });
  });

  it('does not send a non-repeatable POST again when its connection was cut after sending', async (t) => {
    const cutter = await server(t, cutsConnection);
    const second = await server(t, answersOk);
    await assert.rejects(client([cutter.url, second.url]).policies.create(policy('once', '/tmp')), (err: unknown) => {
      assert.ok(isFetchTypeError(err), `fetch's TypeError, not ${String(err)}`);
      return true;
    });
    assert.deepEqual(cutter.seen, ['POST /BackupRestore/BackupPolicies/$/Create']);
    assert.deepEqual(second.seen, [], 'the second instance saw nothing');
  });

  it('does not fail over an HTTP answer, even 503', async (t) => {
    const busy = await server(t, (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ Error: { Code: 'FABRIC_E_SERVICE_TOO_BUSY', Message: 'busy' } }));
    });
    const second = await server(t, answersOk);
    const api = client([busy.url, second.url]);
    for (const call of [api.hierarchy.listApplications(), api.hosts.report('h1', { OperationId: randomUUID(), State: 'InProgress' })]) {
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof LifeboatError, String(err));
        assert.equal(err.details?.status, 503);
        return true;
      });
    }
    assert.equal(busy.seen.length, 2);
    assert.deepEqual(second.seen, []);
  });

  it('fails over its own time limit only for a repeatable call', async (t) => {
    const hung = await server(t, () => { /* never answers */ });
    const second = await server(t, answersOk);
    const api = client([hung.url, second.url], 300);
    await assert.rejects(api.hierarchy.listApplications(), (err: unknown) => {
      assert.ok(err instanceof DOMException && err.name === 'TimeoutError', String(err));
      return true;
    });
    assert.deepEqual(second.seen, [], 'a plain GET over its time limit is not sent elsewhere');
    await api.hosts.register('h1', { Services: [] });
    assert.deepEqual(second.seen, ['POST /Lifeboat/Hosts/h1/$/Register'], 'a hung instance is as good as dead for a repeatable call');
    assert.equal(hung.seen.length, 2);
  });

  it('rejects with the TypeError of the last URL when none can be reached', async () => {
    const first = await freePort();
    const last = await freePort();
    await assert.rejects(client([`http://127.0.0.1:${first}`, `http://127.0.0.1:${last}`]).hierarchy.listApplications(), (err: unknown) => {
      assert.ok(isFetchTypeError(err), String(err));
      const cause = err.cause as { code?: string; port?: number };
      assert.equal(cause.code, 'ECONNREFUSED');
      assert.equal(cause.port, last);
      return true;
    });
  });
});

describe('the --service-url list', () => {
  it('is one or more comma-separated http(s) URLs', () => {
    assert.deepEqual(parseServiceUrls('http://127.0.0.1:19080'), ['http://127.0.0.1:19080']);
    assert.deepEqual(parseServiceUrls(' http://a:1, https://b:2/x ,'), ['http://a:1', 'https://b:2/x']);
    assert.deepEqual(serviceUrlOptions('http://a:1,http://b:2'), { baseUrl: 'http://a:1', baseUrls: ['http://a:1', 'http://b:2'] });
    for (const [text, says] of [['', /no URL/], [' , ', /no URL/], ['http://a:1,ftp://b', /'ftp:\/\/b' is not an http\(s\) URL/], ['a:1', /'a:1' is not/], ['nonsense', /'nonsense' is not/]] as const) {
      assert.throws(() => parseServiceUrls(text, 'LIFEBOAT_URL'), (err: unknown) => {
        assert.ok(err instanceof UsageError, String(err));
        assert.match(err.message, says);
        assert.match(err.message, /^LIFEBOAT_URL: /);
        return true;
      }, text);
    }
  });

  it('a bad one, in the flag or the environment, is a usage error (exit 2) of the operator CLI and of lifeboat host, not a stack trace', () => {
    const bad = 'http://127.0.0.1:1,nonsense';
    for (const [args, env] of [
      [['ls', '--service-url', bad], {}], [['ls'], { LIFEBOAT_URL: bad }],
      [['host', '--service-url', bad, '--token', 't'], {}], [['host', '--token', 't'], { LIFEBOAT_SERVICE_URL: bad }],
    ] as const) {
      try {
        execFileSync(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe', env: { ...process.env, LIFEBOAT_TOKEN: 't', ...env } });
        assert.fail(`${args.join(' ')} ${JSON.stringify(env)}: a bad URL was accepted`);
      } catch (err) {
        const e = err as { status: number; stderr: string };
        assert.equal(e.status, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${e.stderr}`);
        assert.match(e.stderr, /'nonsense' is not an http\(s\) URL/);
        assert.doesNotMatch(e.stderr, /at .*\.ts:\d+/);
      }
    }
  });
});
