// The HTTP edge against requests shaped unlike an SDK's: absolute-form request targets, requests
// Node's HTTP layer would answer by itself (no Host, an unknown expectation), and AppIDs far
// longer than any. Each gets the documented answer: signed under /v4/, with a request id.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { apiRaw, defaultPlatformKey, deploymentWithFactory, expectError, startTestGateway, type TestGateway } from './harness.js';

describe('the HTTP edge, unusual request shapes', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { deployment: deploymentWithFactory(['4']) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('AppIDs far longer than any', () => {
    it('are unknown (40002, default key) without a directory read: 10,000 of 16 KB each were kept in memory (160 MB), and looked up past the refusal budget', async () => {
      const read = vi.spyOn(t.gateway.store.applications, 'get');
      try {
        const res = await apiRaw(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock, headers: { 'sparkpay-app-id': `${t.merchant.appId}${'0'.repeat(10_000)}` } });
        expectError(res, 40002, 401, { signed: false });
        expect(res.headers.get('sparkpay-serial')).toBe((await defaultPlatformKey(t)).serial);
        expect(read.mock.calls.filter(([id]) => id.length > 64)).toEqual([]);
        // A real AppID is still read and served.
        const ok = await apiRaw(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock });
        expectError(ok, 43005, 404);
      } finally {
        read.mockRestore();
      }
    });
  });
});
