/**
 * The operator commands (src/cli) as a user runs them: real `lifeboat` processes against a real
 * Lifeboat (one per test, in process), their --json shapes, exit codes, entity naming incl.
 * --partition-key, plain output without escapes when not at a terminal, a backup and restore round
 * trip that brings the sample application's data back, restore refusing to go on unconfirmed
 * without a terminal, and the progress bar under a pseudo-terminal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { BackupInfoWire, RetentionPlanWire } from '../../src/wire/backups.ts';
import type { BackupProgress, RestoreProgress, VerifyResultWire } from '../../src/wire/operations.ts';
import type { BackupPolicyWire } from '../../src/wire/policy.ts';
import type { LsApplication } from '../../src/cli/ls.ts';
import { TEST_ADMIN_TOKEN } from '../support/api-http.ts';
import { ANSI_ESCAPE, type CliResult, cliEnv, lifeboatCli, lifeboatCliInTerminal } from '../support/cli.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { Children, REPO_ROOT, startHostProcess } from '../support/process-children.ts';
import { APP_NAME, SERVICE_NAME, UNKNOWN_PID } from '../support/sample.ts';
import { tempDir } from '../support/tmp.ts';

const ok = (r: CliResult, what: string): CliResult => {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
};
const json = <T>(r: CliResult, what: string): T => JSON.parse(ok(r, what).stdout) as T;

describe('lifeboat operator commands', () => {
  it('ls, backup, backups ls, verify, progress, restore, policies and protection, exit codes', async (t) => {
    const lb = await startTestLifeboat(t);
    assert.ok(lb.sample);
    const env = cliEnv(lb.url);
    const cli = (...args: string[]): Promise<CliResult> => lifeboatCli(args, env);
    const kv = `${lb.sample.url}/kv/hello`;
    const put = (await (await fetch(kv, { method: 'PUT', body: 'world' })).json()) as { PartitionId: string };
    const storage = `fileshare:${lb.share}`;

    await t.test('ls: the hierarchy as a table without escapes, and as JSON in the REST shapes', async () => {
      const table = ok(await cli('ls'), 'ls');
      assert.doesNotMatch(table.stdout + table.stderr, ANSI_ESCAPE, 'no escapes when stdout is not a terminal');
      assert.match(table.stdout, /^ENTITY\s+RANGE\s+POLICY\s+INHERITED FROM\s+SUSPENDED\s+LAST BACKUP\s+TYPE\s+AGE\s+HEALTH$/m);
      assert.match(table.stdout, new RegExp(`^    ${put.PartitionId}\\s+\\[`, 'm'));
      const apps = json<LsApplication[]>(await cli('ls', '--json'), 'ls --json');
      assert.deepEqual(apps.map((a) => a.Name), [APP_NAME]);
      const svc = apps[0]!.Services[0]!;
      assert.equal(svc.Name, SERVICE_NAME);
      assert.equal(svc.Partitions.length, 4);
      for (const p of svc.Partitions) {
        assert.equal(p.PartitionInformation.ServicePartitionKind, 'Int64Range');
        assert.equal(p.BackupConfiguration.Kind, 'Partition');
        assert.equal(p.BackupConfiguration.PolicyInheritedFrom, 'Invalid');
        assert.equal(p.LastBackup, null);
        assert.equal(p.Health, 'Ok');
      }
    });

    await t.test('entities by name, by partition id and by partition key', async () => {
      const byKey = json<LsApplication[]>(await cli('ls', SERVICE_NAME, '--partition-key', 'hello', '--json'), 'ls --partition-key hello');
      assert.deepEqual(byKey[0]!.Services[0]!.Partitions.map((p) => p.PartitionInformation.Id), [put.PartitionId], 'the partition the sample app put "hello" in');
      const byId = json<LsApplication[]>(await cli('ls', put.PartitionId.toUpperCase(), '--json'), 'ls <pid>');
      assert.deepEqual(byId[0]!.Services[0]!.Partitions.map((p) => p.PartitionInformation.Id), [put.PartitionId]);
      const at42 = json<LsApplication[]>(await cli('ls', 'SampleApp~MyStatefulService', '--partition-key', '42', '--json'), 'ls --partition-key 42')[0]!.Services[0]!.Partitions;
      assert.equal(at42.length, 1);
      assert.ok(BigInt(at42[0]!.PartitionInformation.LowKey!) <= 42n && 42n <= BigInt(at42[0]!.PartitionInformation.HighKey!), 'the range holds 42');
      const app = json<LsApplication[]>(await cli('ls', APP_NAME, '--json'), 'ls app');
      assert.equal(app[0]!.Services[0]!.Partitions.length, 4);
    });

    let backup: BackupProgress | undefined;
    await t.test('backup: one partition by key, followed to Success, as JSON; plain progress lines', async () => {
      const r = await cli('backup', SERVICE_NAME, '--partition-key', 'hello', '--storage', storage, '--json');
      const [one, ...rest] = json<Array<{ PartitionId: string; ServiceName: string; Progress: BackupProgress }>>(r, 'backup --json');
      assert.equal(rest.length, 0);
      assert.equal(one!.PartitionId, put.PartitionId);
      assert.equal(one!.ServiceName, SERVICE_NAME);
      assert.equal(one!.Progress.BackupState, 'Success');
      assert.match(one!.Progress.BackupLocation, new RegExp(`^SampleApp/MyStatefulService/${put.PartitionId}/`));
      backup = one!.Progress;
      const plain = ok(await cli('backup', put.PartitionId, '--storage', storage), 'backup, plain');
      assert.doesNotMatch(plain.stdout + plain.stderr, ANSI_ESCAPE);
      assert.match(plain.stdout, new RegExp(`partition ${put.PartitionId}: backup [0-9a-f-]{36} at `));
      assert.match(plain.stderr, /: Success/, 'a plain progress line for the end');
    });

    await t.test('backups ls, verify (a backup id found in the index), progress', async () => {
      const listed = json<BackupInfoWire[]>(await cli('backups', 'ls', put.PartitionId, '--json'), 'backups ls');
      assert.equal(listed.length, 2);
      assert.equal(listed[0]!.BackupId, backup!.BackupId, 'oldest first');
      assert.ok(listed.every((b) => b.BackupType === 'Full' && b.ServiceName === SERVICE_NAME));
      const latest = json<BackupInfoWire[]>(await cli('backups', 'ls', APP_NAME, '--latest', '--json'), 'backups ls --latest');
      assert.deepEqual(latest.map((b) => b.BackupId), [listed[1]!.BackupId]);
      const inStorage = json<BackupInfoWire[]>(await cli('backups', 'ls', SERVICE_NAME, '--storage', storage, '--json'), 'backups ls --storage');
      assert.deepEqual(inStorage.map((b) => b.BackupId).sort(), listed.map((b) => b.BackupId).sort());
      const none = json<BackupInfoWire[]>(await cli('backups', 'ls', put.PartitionId, '--until', '2000-01-01T00:00:00Z', '--json'), 'backups ls --until');
      assert.deepEqual(none, []);

      const verified = json<VerifyResultWire>(await cli('verify', backup!.BackupId, '--storage', storage, '--json'), 'verify');
      assert.equal(verified.Ok, true);
      assert.equal(verified.BackupId, backup!.BackupId);
      assert.deepEqual(verified.Chain.map((c) => c.BackupType), ['Full']);

      const progress = json<{ PartitionId: string; BackupProgress: BackupProgress; RestoreProgress: RestoreProgress }>(await cli('progress', put.PartitionId, '--json'), 'progress');
      assert.equal(progress.PartitionId, put.PartitionId);
      assert.equal(progress.BackupProgress.BackupState, 'Success');
      assert.equal(progress.RestoreProgress.RestoreState, 'Invalid');
    });

    await t.test('restore: refused unconfirmed without a terminal; with --yes the data comes back', async () => {
      await fetch(kv, { method: 'PUT', body: 'changed' });
      const refused = await cli('restore', put.PartitionId, '--backup-id', backup!.BackupId, '--storage', storage);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stdout, new RegExp(`to backup ${backup!.BackupId} \\(Full`), 'it shows what would be restored');
      assert.match(refused.stdout, new RegExp(`goes back to LSN ${backup!.LsnOfLastBackupRecord}\\b`));
      assert.match(refused.stderr, /--yes/);
      assert.equal(await (await fetch(kv)).text(), 'changed', 'nothing was restored');

      const r = json<{ PartitionId: string; Backup: BackupInfoWire; Chain: BackupInfoWire[]; Progress: RestoreProgress }>(
        await cli('restore', SERVICE_NAME, '--partition-key', 'hello', '--backup-id', backup!.BackupId, '--storage', storage, '--yes', '--json'), 'restore --yes');
      assert.equal(r.PartitionId, put.PartitionId);
      assert.equal(r.Backup.BackupId, backup!.BackupId);
      assert.deepEqual(r.Chain.map((b) => b.BackupId), [backup!.BackupId]);
      assert.equal(r.Progress.RestoreState, 'Success');
      assert.equal(r.Progress.RestoredLsn, backup!.LsnOfLastBackupRecord);
      assert.equal(await (await fetch(kv)).text(), 'world', 'the backup\'s data is back');

      const byTime = await cli('restore', put.PartitionId, '--time', '2000-01-01T00:00:00Z', '--storage', storage, '--yes');
      assert.equal(byTime.code, 4, 'no backup at or before that time');
    });

    await t.test('policies, protection and retention plan', async () => {
      ok(await cli('policy', 'create', 'hourly', '--storage', storage, '--interval', 'PT1H', '--retention', 'P7D', '--min-backups', '2'), 'policy create');
      const got = json<BackupPolicyWire>(await cli('policy', 'get', 'hourly', '--json'), 'policy get');
      assert.deepEqual(got.Schedule, { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' });
      assert.deepEqual(got.RetentionPolicy, { RetentionPolicyType: 'Basic', RetentionDuration: 'P7D', MinimumNumberOfBackups: 2 });
      const file = join(tempDir(t), 'daily.json');
      writeFileSync(file, JSON.stringify({ ...got, Name: 'daily', Schedule: { ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Daily', RunTimes: ['0001-01-01T09:00:00Z'] } }));
      ok(await cli('policy', 'create', 'daily', '--file', file), 'policy create --file');
      ok(await cli('policy', 'update', 'hourly', '--max-incrementals', '3'), 'policy update');
      const all = json<BackupPolicyWire[]>(await cli('policy', 'ls', '--json'), 'policy ls');
      assert.deepEqual(all.map((p) => [p.Name, p.MaxIncrementalBackups]), [['daily', 0], ['hourly', 3]]);
      const dup = await cli('policy', 'create', 'hourly', '--storage', storage, '--interval', 'PT1H');
      assert.equal(dup.code, 3, 'a name in use is 409');
      assert.match(dup.stderr, /FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING/);
      assert.match(dup.stderr, /^hint: Choose another name/m, 'the catalogue\'s hint');

      ok(await cli('enable', SERVICE_NAME, '--policy', 'hourly'), 'enable');
      ok(await cli('suspend', put.PartitionId), 'suspend');
      const apps = json<LsApplication[]>(await cli('ls', '--json'), 'ls after enable');
      const svc = apps[0]!.Services[0]!;
      assert.equal(svc.BackupConfiguration?.PolicyName, 'hourly');
      const mine = svc.Partitions.find((p) => p.PartitionInformation.Id === put.PartitionId)!;
      assert.deepEqual([mine.BackupConfiguration.PolicyName, mine.BackupConfiguration.PolicyInheritedFrom, mine.BackupConfiguration.SuspensionInfo.IsSuspended], ['hourly', 'Service', true]);
      const table = ok(await cli('ls', put.PartitionId), 'ls table').stdout;
      assert.match(table, new RegExp(`${put.PartitionId}\\s+\\[\\S+, \\S+\\]\\s+hourly\\s+Service\\s+yes\\s+\\S+Z\\s+Full\\s+\\S+\\s+Ok`));
      ok(await cli('resume', put.PartitionId), 'resume');

      const plans = json<RetentionPlanWire[]>(await cli('retention', 'plan', put.PartitionId, '--json'), 'retention plan');
      assert.equal(plans.length, 1);
      assert.equal(plans[0]!.PolicyName, 'hourly');
      assert.equal(plans[0]!.Delete.length, 0, 'two fresh backups, at least two kept');
      assert.equal(plans[0]!.Keep.length, 2);
      const text = ok(await cli('retention', 'plan', SERVICE_NAME, '--keep'), 'retention plan table').stdout;
      assert.match(text, /^PARTITION\s+ACTION\s+BACKUP ID\s+TYPE\s+CREATED\s+WHY$/m);
      assert.match(text, /\bkeep\b/);

      const inUse = await cli('policy', 'delete', 'hourly');
      assert.equal(inUse.code, 1, inUse.stderr);
      assert.match(inUse.stderr, /FABRIC_E_BACKUP_IS_ENABLED/);
      ok(await cli('disable', SERVICE_NAME), 'disable');
      ok(await cli('policy', 'delete', 'hourly'), 'policy delete');
      assert.equal((await cli('policy', 'get', 'hourly')).code, 4);
    });

    await t.test('exit codes: usage 2, not found 4, auth 5, failed 1', async () => {
      for (const args of [['backup'], ['restore', put.PartitionId], ['backup', put.PartitionId, '--storage', 'nowhere'], ['ls', '--bogus'], ['ls', APP_NAME, '--partition-key', '1'],
        ['backup', SERVICE_NAME, '--no-wait', '--storage', storage], ['backup', put.PartitionId, '--storage', 'fileshare:/etc']]) {
        const r = await cli(...args);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
      }
      for (const args of [['ls', 'fabric:/Nope'], ['ls', 'fabric:/SampleApp/Nope'], ['ls', UNKNOWN_PID], ['progress', UNKNOWN_PID], ['verify', UNKNOWN_PID]]) {
        const r = await cli(...args);
        assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /^hint: /m);
      }
      const noToken = await lifeboatCli(['ls'], cliEnv(lb.url, { LIFEBOAT_TOKEN: '', LIFEBOAT_DATA_DIR: tempDir(t) }));
      assert.equal(noToken.code, 5, noToken.stderr);
      assert.match(noToken.stderr, /LIFEBOAT_E_UNAUTHENTICATED/);
      const wrong = await lifeboatCli(['ls'], cliEnv(lb.url, { LIFEBOAT_TOKEN: 'lbt_wrong' }));
      assert.equal(wrong.code, 5, wrong.stderr);
      const reader = json<{ Token: string }>(await cli('token', 'create', '--role', 'reader', '--json'), 'token create');
      const denied = await lifeboatCli(['backup', put.PartitionId, '--storage', storage], cliEnv(lb.url, { LIFEBOAT_TOKEN: reader.Token }));
      assert.equal(denied.code, 5, denied.stderr);
      assert.match(denied.stderr, /403 E_ACCESSDENIED/);

      // A share under a file: the backup is accepted and fails in the host.
      writeFileSync(join(lb.dataDir, 'backups', 'a-file'), 'not a folder');
      const failed = await cli('backup', put.PartitionId, '--storage', `fileshare:${join(lb.dataDir, 'backups', 'a-file', 'share')}`);
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /ended Failure: LIFEBOAT_E_STORAGE_UNAVAILABLE/);
      assert.match(failed.stderr, /^hint: Check the storage description/m);
      const unreachable = await lifeboatCli(['ls'], cliEnv('http://127.0.0.1:1'));
      assert.equal(unreachable.code, 1);
      assert.match(unreachable.stderr, /cannot reach the Lifeboat service/);
    });

    await t.test('explorer: the sign-in link with the token in its fragment, and a warning', async () => {
      const r = ok(await cli('explorer'), 'explorer');
      assert.equal(r.stdout.trim(), `${lb.url}/explorer/#token=${TEST_ADMIN_TOKEN}`);
      assert.match(r.stderr, /credential/);
    });

    await t.test('at a terminal: a progress bar (escapes, a percentage), colour; NO_COLOR turns both off', async () => {
      const r = await lifeboatCliInTerminal(['backup', SERVICE_NAME, '--partition-key', 'hello', '--storage', storage], env);
      assert.equal(r.code, 0, r.stdout);
      assert.ok(r.stdout.includes('\u001b[?25l'), 'cli-progress hides the cursor while it draws');
      assert.ok(r.stdout.includes('\u001b[0K'), 'and redraws the line');
      assert.match(r.stdout, /backup [0-9a-f]{8} █+░* 100% \| [\d.]+ KiB \/ [\d.]+ KiB \| .* \| ETA \S+ \| Success/, 'the bar by bytes, full at the end');
      assert.ok(r.stdout.includes('\u001b[32m✓'), 'a green tick');
      const plain = await lifeboatCliInTerminal(['backup', SERVICE_NAME, '--partition-key', 'hello', '--storage', storage], { ...env, NO_COLOR: '1' });
      assert.equal(plain.code, 0, plain.stdout);
      assert.doesNotMatch(plain.stdout, ANSI_ESCAPE);
      assert.match(plain.stdout, /: Success/);
    });
  });

  it('busy (409) exits 3; Ctrl-C without a terminal detaches at once and exits 130, the backup going on', async (t) => {
    // Children first: their kill hooks run before the in-process service closes.
    const children = new Children(t);
    const lb = await startTestLifeboat(t, { sample: false });
    const env = cliEnv(lb.url);
    const host = await startHostProcess(children, { serviceUrl: lb.url, hostId: 'gone', dataDir: tempDir(t), service: 'fabric:/HostApp/KvService', partitioning: 'range:2' });
    const pid = host.info.partitions[0]!;
    // With its host gone, a backup stays Accepted: nobody takes the order.
    await host.child.kill('SIGKILL');
    const storage = `fileshare:${lb.share}`;

    /** A CLI process (under `script` when `tty`) whose output is watched; `input` writes to its stdin (the terminal's keyboard under script). */
    const started = (args: string[], tty: boolean): { until(re: RegExp): Promise<void>; input(s: string): void; interrupt(): void; output(): string; exited: Promise<number | null> } => {
      const cmd = [process.execPath, '--import', 'tsx', 'src/main/cli.ts', ...args];
      const child = tty
        ? spawn('script', ['-qfec', cmd.map((a) => `'${a}'`).join(' '), '/dev/null'], { cwd: REPO_ROOT, env: { ...env, TERM: 'xterm-256color' }, stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn(cmd[0]!, cmd.slice(1), { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
      t.after(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      let text = '';
      const waiters = new Set<() => void>();
      for (const s of [child.stdout, child.stderr]) {
        s.setEncoding('utf8').on('data', (d: string) => {
          text += d;
          for (const w of waiters) w();
        });
      }
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return {
        until: (re) => new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (re.test(text)) resolve();
          };
          waiters.add(check);
          check();
          void exited.then((code) => reject(new Error(`exited (${code}) before ${String(re)}: ${JSON.stringify(text)}`)));
        }),
        input: (s) => child.stdin.write(s),
        interrupt: () => child.kill('SIGINT'),
        output: () => text,
        exited,
      };
    };

    const plain = started(['backup', pid, '--storage', storage], false);
    await plain.until(/: Accepted/);
    const busy = await lifeboatCli(['backup', pid, '--storage', storage, '--no-wait'], env);
    assert.equal(busy.code, 3, busy.stderr);
    assert.match(busy.stderr, /409 FABRIC_E_BACKUP_IN_PROGRESS/);
    assert.match(busy.stderr, /^hint: Wait for the running backup/m);
    // No terminal to ask on: the first Ctrl-C detaches.
    plain.interrupt();
    assert.equal(await plain.exited, 130, plain.output());
    assert.match(plain.output(), new RegExp(`detached: the backup goes on in the service; follow it with \`lifeboat progress ${pid}\``));
    const progress = JSON.parse((await lifeboatCli(['progress', pid, '--json'], env)).stdout) as { BackupProgress: BackupProgress };
    assert.equal(progress.BackupProgress.BackupState, 'Accepted', 'detaching did not end the backup');
  });
});
