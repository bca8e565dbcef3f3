// The independent check of PROTOCOL §13: a notification captured from the running gateway is
// opened with the openssl command line alone — pkeyutl (RSA-OAEP, SHA-256, MGF1-SHA-256) for the
// AES key, enc -aes-256-cbc for the body, dgst -verify for the platform signature — so the
// envelope is not only checked by the code that made it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { api, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';
import { startReceiver, type Receiver } from './notify-receiver.js';

describe.each(DATABASE_KINDS)('a delivered notification opened with openssl on %s', (kind) => {
  let t: TestGateway;
  let r: Receiver;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sparkpay-notify-openssl-'));
    r = await startReceiver();
    t = await startTestGateway({ kind, workers: true, config: { notifyAllowPrivate: true, notify: { timeoutMs: 10_000, concurrency: 4, perDestination: 4, pollMs: 20, leaseMs: 15_000 } } });
  });
  afterAll(async () => {
    await t?.close();
    await r?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

  it('decrypts the key and the body and verifies the signature with openssl only', async () => {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock, { notify_url: r.url, merchant_order_desc: '订单 №42 – ✓' }), merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    const paymentOrderNo = String(res.json.data!.payment_order_no);
    await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
    const [captured] = await r.waitFor(1);
    const envelope = JSON.parse(captured!.raw.toString('utf8')) as { head: Record<string, string>; body: string };

    writeFileSync(join(dir, 'merchant.key'), t.merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'platform.pub'), t.merchant.platformPublicKeyPem);
    writeFileSync(join(dir, 'aes_key.bin'), Buffer.from(envelope.head.aes_key!, 'base64'));
    writeFileSync(join(dir, 'body.bin'), Buffer.from(envelope.body, 'base64'));
    writeFileSync(join(dir, 'sign.bin'), Buffer.from(envelope.head.sign!, 'base64'));

    const aesKey = openssl(
      'pkeyutl', '-decrypt', '-inkey', 'merchant.key', '-in', 'aes_key.bin',
      '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256',
    ).toString('latin1');
    expect(aesKey).toMatch(/^[A-Za-z0-9]{32}$/);
    const keyHex = Buffer.from(aesKey, 'ascii').toString('hex');
    const ivHex = Buffer.from(aesKey.slice(0, 16), 'ascii').toString('hex');
    openssl('enc', '-d', '-aes-256-cbc', '-K', keyHex, '-iv', ivHex, '-in', 'body.bin', '-out', 'payload.json');
    const verified = openssl('dgst', '-sha256', '-verify', 'platform.pub', '-signature', 'sign.bin', 'payload.json').toString();
    expect(verified.trim()).toBe('Verified OK');

    const payload = JSON.parse(readFileSync(join(dir, 'payload.json'), 'utf8')) as Record<string, unknown>;
    const [row] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
    expect(payload).toMatchObject({ payment_order_no: paymentOrderNo, merchant_order_desc: '订单 №42 – ✓', pay_status: 'PAID', notify_id: row!.notifyId, notify_type: 'ORDER_PAID', notify_time: t.clock.seconds(), sequence: 1 });
    expect(envelope.head).toMatchObject({ charset: 'UTF-8', app_id: t.merchant.appId, serial: t.merchant.serial });

    // A changed byte of the payload no longer verifies.
    writeFileSync(join(dir, 'tampered.json'), readFileSync(join(dir, 'payload.json'), 'utf8').replace('PAID', 'PAYD'));
    expect(() => openssl('dgst', '-sha256', '-verify', 'platform.pub', '-signature', 'sign.bin', 'tampered.json')).toThrow();
  });
});
