import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { it } from 'node:test';

it('every lifeboat command prints its help', () => {
  for (const args of [['--help'], ['start', '--help'], ['host', '--help'], ['keys', '--help'], ['keys', 'rewrap', '--help'], ['token', '--help'], ['token', 'create', '--help'], ['token', 'list', '--help'], ['token', 'revoke', '--help'],
    ...[['ls'], ['backup'], ['restore'], ['progress'], ['backups'], ['backups', 'ls'], ['verify'], ['policy'], ['policy', 'create'], ['policy', 'get'], ['policy', 'ls'], ['policy', 'update'],
      ['policy', 'delete'], ['enable'], ['disable'], ['suspend'], ['resume'], ['retention'], ['retention', 'plan'], ['explorer']].map((c) => [...c, '--help'])]) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], { encoding: 'utf8' });
    assert.match(out, /Usage: lifeboat/, args.join(' '));
  }
});

it('a bad flag is refused with a clear message and the usage exit code 2, not a stack trace', () => {
  try {
    execFileSync(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', 'start', '--port', 'seventy'], { encoding: 'utf8', stdio: 'pipe' });
    assert.fail('a bad port was accepted');
  } catch (err) {
    const e = err as { status: number; stderr: string };
    assert.equal(e.status, 2);
    assert.match(e.stderr, /a port is a whole number/);
    assert.doesNotMatch(e.stderr, /at .*\.ts:\d+/);
  }
});
