#!/usr/bin/env node
// The project's one test command: lint, type-check (the build), then the vitest suite.
// Lint and type-check count as one check each; the last line is the plain
// "N passed, N failed" summary that CI reads.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
let passed = 0;
let failed = 0;

function step(name, cmd, cmdArgs) {
  console.log(`\n== ${name}: ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', shell: false });
  if (r.status === 0) passed += 1;
  else {
    failed += 1;
    console.log(`${name} FAILED`);
  }
  return r.status === 0;
}

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
step('lint', npx, ['eslint', '.']);
const built = step('type-check and build', npx, ['tsc', '-b', 'packages/protocol', 'packages/sdk', 'packages/gateway', 'examples']);
step('type-check tests', npx, ['tsc', '-p', 'tsconfig.tests.json']);

if (built) {
  const dir = mkdtempSync(join(tmpdir(), 'sparkpay-test-'));
  const out = join(dir, 'vitest.json');
  console.log(`\n== tests: vitest run${process.env.SPARKPAY_TEST_DATABASE_URL ? ' (SQLite and PostgreSQL)' : ' (SQLite only; set SPARKPAY_TEST_DATABASE_URL for PostgreSQL)'}`);
  const r = spawnSync(npx, ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...args], {
    stdio: 'inherit',
  });
  try {
    const report = JSON.parse(readFileSync(out, 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    // A file that fails to load has no failed tests but is a failure all the same.
    for (const file of report.testResults ?? []) {
      if (file.status === 'failed' && (file.assertionResults ?? []).every((a) => a.status !== 'failed')) failed += 1;
    }
  } catch {
    failed += 1;
    console.log('vitest produced no report');
  }
  if (r.status !== 0 && failed === 0) failed += 1;
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
