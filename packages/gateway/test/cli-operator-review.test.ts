// Defects found by the review of the operator side (merchants, applications, keys, the master
// key, the CLI): each test failed on the code before its fix.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/cli/config.js';
import { createGateway } from '../src/cli/gateway.js';
import { createTestDatabase } from './databases.js';
import { ManualClock } from './harness.js';

describe('the master key file', () => {
  // README: a configuration file or relayer key file other users can read is warned of at start;
  // the master key file (`start` without SPARKPAY_MASTER_KEY reads it, `dev` makes it 0600),
  // which opens every platform private key, was read at any mode without a word.
  it('start warns when the master key file in the data directory can be read by other users', async () => {
    const db = await createTestDatabase('sqlite');
    const dataDir = mkdtempSync(join(tmpdir(), 'sparkpay-mk-'));
    const keyFile = join(dataDir, 'master.key');
    writeFileSync(keyFile, `${'cd'.repeat(32)}\n`);
    chmodSync(keyFile, 0o644);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const start = async () => {
      const config = { ...loadConfig('production', { SPARKPAY_DATA_DIR: dataDir }), host: '127.0.0.1', port: 0, databaseUrl: db.url };
      const gateway = await createGateway({ config, clock: new ManualClock(), logger: pino({ level: 'info' }, sink), workers: false });
      await gateway.close();
    };
    try {
      await start();
      const warned = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 40 && l.file === keyFile && l.mode === '0644');
      expect(warned()).toHaveLength(1);
      expect(lines.join('\n')).not.toContain('cd'.repeat(32));
      lines.length = 0;
      chmodSync(keyFile, 0o600);
      await start();
      expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.file === keyFile && l.mode !== undefined)).toEqual([]);
    } finally {
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
