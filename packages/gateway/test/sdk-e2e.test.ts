// The merchant SDK against the real gateway: typed calls for both editions, numeric error
// codes, and a response that does not verify with the configured platform key is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparkPayApiError, SparkPayClient, SparkPayResponseSignatureError } from '@sparkpay/sdk';
import { DATABASE_KINDS } from './databases.js';
import { ManualClock, SELLER, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('SDK against the gateway (%s)', (kind) => {
  let t: TestGateway;
  let client: SparkPayClient;
  const now = () => t.clock.seconds();
  beforeAll(async () => {
    t = await startTestGateway({ kind, clock: new ManualClock(Date.now()) });
    client = new SparkPayClient({
      baseUrl: t.baseUrl,
      appId: t.merchant.appId,
      merchantPrivateKey: t.merchant.privateKey,
      platformPublicKey: t.merchant.platformPublicKeyPem,
      clock: () => t.clock.nowMs(),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('creates, queries and closes a Pro order priced in USD with a split', async () => {
    const created = await client.createProOrder({
      merchant_no: t.merchant.merchantNo,
      request_no: 'sdk_pro_1',
      merchant_order_time: now(),
      pricing_currency: 'USD',
      pricing_amount: '25.00',
      available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '4'] }],
      divide_detail: { seller_amount: '20.00', seller_addr: SELLER, merchant_amount: '5.00' },
    });
    expect(created).toMatchObject({ pay_status: 'PENDING', pricing_amount: '25.00', pricing_currency: 'USD' });
    const got = await client.getProOrder(t.merchant.merchantNo, 'sdk_pro_1');
    expect(got.payment_order_no).toBe(created.payment_order_no);
    expect(got.divide_detail).toMatchObject({ seller_addr: SELLER });
    const closed = await client.closeOrder({ merchant_no: t.merchant.merchantNo, request_no: 'sdk_pro_1' });
    expect(closed.pay_status).toBe('CLOSED');
  });

  it('throws SparkPayApiError carrying the numeric code of the error table', async () => {
    const err = await client
      .createOrder({ merchant_no: t.merchant.merchantNo, request_no: 'sdk_bad', merchant_order_time: now(), total_amount: '1e3', merchant_order_currency: 'USDT' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SparkPayApiError);
    expect(err).toMatchObject({ code: 41013, httpStatus: 400 });
    expect((err as SparkPayApiError).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses an answer signed by a platform key other than the configured one', async () => {
    const wrong = new SparkPayClient({
      baseUrl: t.baseUrl,
      appId: t.merchant.appId,
      merchantPrivateKey: t.merchant.privateKey,
      platformPublicKey: t.otherMerchant.platformPublicKeyPem,
      clock: () => t.clock.nowMs(),
    });
    await expect(wrong.getOrder(t.merchant.merchantNo, 'sdk_pro_1')).rejects.toBeInstanceOf(SparkPayResponseSignatureError);
  });
});
