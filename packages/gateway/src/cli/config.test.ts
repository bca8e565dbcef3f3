import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

function dataDir(config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'sparkpay-config-'));
  if (config !== undefined) writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

describe('loadConfig', () => {
  it('uses the documented defaults', () => {
    const dir = dataDir();
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dir });
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, publicUrl: 'http://127.0.0.1:8080', rateLimit: 1000, timestampWindowSeconds: 300, notifyAllowPrivate: false, masterKey: null });
    expect(c.databaseUrl).toBe(join(dir, 'sparkpay.db'));
    expect(c.deployment.networks.map((n) => [n.id, n.feeRate, n.minFeeUsd])).toEqual([
      ['2', '0.005', '1.00'],
      ['3', '0.005', '0.10'],
      ['4', '0.005', '0.10'],
      ['5', '0.005', '0.10'],
    ]);
    expect(c.rates).toMatchObject({ USDT: '1', USDC: '1', HKD: '0.1282' });
    expect(c.rates.ETH).toBeUndefined();
  });

  it('ships demo rates for every currency and allows private notify targets in development', () => {
    const c = loadConfig('development', { SPARKPAY_DATA_DIR: dataDir() });
    expect(Object.keys(c.rates)).toEqual(expect.arrayContaining(['USDT', 'USDC', 'ETH', 'BNB', 'POL', 'HSK', 'IRIS']));
    expect(c.notifyAllowPrivate).toBe(true);
  });

  it('lets the environment win over the file', () => {
    const dir = dataDir({ port: 9000, host: '0.0.0.0', rate_limit: 5, networks: { '2': { fee_rate: '0.004' }, '5': false } });
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dir, SPARKPAY_PORT: '9100', SPARKPAY_PUBLIC_URL: 'https://pay.example/' });
    expect(c.port).toBe(9100);
    expect(c.host).toBe('0.0.0.0');
    expect(c.rateLimit).toBe(5);
    expect(c.publicUrl).toBe('https://pay.example');
    expect(c.deployment.networks.map((n) => `${n.id}:${n.feeRate}`)).toEqual(['2:0.004', '3:0.005', '4:0.005']);
  });

  it.each([
    [{ SPARKPAY_PORT: 'eighty' }, undefined, /SPARKPAY_PORT must be a whole number/],
    [{ SPARKPAY_PORT: '70000' }, undefined, /between 0 and 65535/],
    [{ SPARKPAY_RATE_LIMIT: '-1' }, undefined, /SPARKPAY_RATE_LIMIT/],
    [{}, '{not json', /not valid/],
    [{}, '[1, 2]', /not a JSON object/],
    [{}, { rates: { ETH: '-3' } }, /rate for ETH/],
    [{}, { networks: { '9': {} } }, /unknown network enum "9"/],
    [{}, { networks: { '2': { fee_rate: '1.5' } } }, /fee rate/],
  ])('refuses bad settings with a clear reason (%j %j)', (env, file, reason) => {
    const dir = dataDir(file);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dir, ...env })).toThrow(ConfigError);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dir, ...env })).toThrow(reason);
  });

  it('requires the file named by SPARKPAY_CONFIG to exist', () => {
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_CONFIG: '/nonexistent/sparkpay.json' })).toThrow(/does not exist/);
  });
});
