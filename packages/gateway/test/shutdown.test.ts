// Closing what was opened finishes even when nothing else keeps the process alive: a script
// whose last step is a top-level `await gateway.close()` exits 0 after it, instead of Node
// ending the process mid-close (exit code 13, "unsettled top-level await").
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const DIST = resolve(import.meta.dirname, '../dist');
const dir = mkdtempSync(join(tmpdir(), 'sparkpay-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('shutdown', () => {
  it('a gateway created and closed without listening closes completely', async () => {
    const script = `
      import { loadConfig } from ${JSON.stringify(join(DIST, 'cli/config.js'))};
      import { createGateway } from ${JSON.stringify(join(DIST, 'cli/gateway.js'))};
      const config = loadConfig('production', { SPARKPAY_DATA_DIR: ${JSON.stringify(join(dir, 'data'))}, SPARKPAY_MASTER_KEY: '11'.repeat(32) });
      const gateway = await createGateway({ config: { ...config, logLevel: 'silent' } });
      await gateway.close();
      process.stdout.write('closed');
    `;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    expect(r.stdout).toBe('closed');
  });
});
