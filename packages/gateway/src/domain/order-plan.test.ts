import { describe, expect, it } from 'vitest';
import type { Deployment } from './catalogue.js';
import { mainnetDeployment } from './catalogue.js';
import { ADDR, addressN, baseSplit, codeOf, merchant, NOW, plan, planOf, standardBody } from './order-fixtures.suite.js';
import { rateTableFrom } from './rates.js';

const E18 = 10n ** 18n;

function optionOn(body: Record<string, unknown>, network: string) {
  return planOf(plan(body)).options.find((o) => o.network === network);
}

describe('request_no (41023)', () => {
  it('accepts 64 characters of [A-Za-z0-9_] and keys it case-insensitively', () => {
    const p = planOf(plan(standardBody({ request_no: `Ab_${'9'.repeat(61)}` })));
    expect(p.requestNo).toBe(`Ab_${'9'.repeat(61)}`);
    expect(p.requestNoKey).toBe(`ab_${'9'.repeat(61)}`);
  });
  it.each(['x'.repeat(65), 'has-dash', 'has space', 'ünï', 'a.b'])('refuses %j', (requestNo) => {
    expect(codeOf(plan(standardBody({ request_no: requestNo })))).toBe(41023);
  });
});

describe('currency (41009)', () => {
  it.each(['DOGE', 'usdt', 'USD', 'HKD'])('refuses %s for a standard order', (c) => {
    expect(codeOf(plan(standardBody({ merchant_order_currency: c })))).toBe(41009);
  });
  it('refuses a currency the deployment does not carry even if mainnet does', () => {
    const deployment: Deployment = { networks: mainnetDeployment().networks.filter((n) => n.id !== '5') };
    expect(codeOf(plan(standardBody({ merchant_order_currency: 'IRIS' }), 'standard', { deployment }))).toBe(41009);
  });
});

describe('total_amount (41013, 41018)', () => {
  it.each(['-1', '0', '0.000', '1e3', '1.2.3', ' 1', '1 ', '+1', '.5', '5.', '0x10', '１', '', `${'1'.repeat(31)}`])('refuses %j with 41013', (a) => {
    const code = codeOf(plan(standardBody({ total_amount: a })));
    // "" is a missing required field (40003), everything else a malformed amount.
    expect(code).toBe(a === '' ? 40003 : 41013);
  });
  it('accepts 30 integer digits', () => {
    expect(codeOf(plan(standardBody({ total_amount: '9'.repeat(30) })))).toBe(0);
  });
  it('offers no pair whose amount a settlement plan could not hold (2^128 base units): 41013 when none is left', () => {
    // BNB Smart Chain's USDT has 18 decimals: 340282366920938463463 of it is the most below 2^128.
    expect(optionOn({ ...standardBody({ total_amount: '340282366920938463463' }), receive_network: '3' }, '3')?.amountBase).toBe(340282366920938463463n * E18);
    const beyond = plan({ ...standardBody({ total_amount: '340282366920938463464' }), receive_network: '3' });
    expect(codeOf(beyond)).toBe(41013);
    expect(beyond.ok ? '' : beyond.message).toMatch(/total_amount is more than a settlement can pay out/);
    // On every network: the 6-decimal ones keep the pair, BNB Smart Chain's is dropped.
    expect(planOf(plan(standardBody({ total_amount: '340282366920938463464' }))).options.map((o) => o.network)).toEqual(['2', '4']);
  });
  it('holds USDT to 6 decimals and ETH to 8', () => {
    expect(codeOf(plan(standardBody({ total_amount: '10.1234567' })))).toBe(41018);
    expect(codeOf(plan(standardBody({ total_amount: '10.123456' })))).toBe(0);
    expect(codeOf(plan(standardBody({ merchant_order_currency: 'ETH', total_amount: '1.123456789' })))).toBe(41018);
    expect(codeOf(plan(standardBody({ merchant_order_currency: 'ETH', total_amount: '1.12345678' })))).toBe(0);
  });
  it('ignores trailing zeros beyond the precision (the value counts, not the text)', () => {
    const p = planOf(plan(standardBody({ total_amount: '10.500000000' })));
    expect(p.pricing).toMatchObject({ currency: 'USDT', amount: 10_500_000n, precision: 6 });
  });
  it('uses the smallest precision among the networks named when it differs between them', () => {
    const base = mainnetDeployment();
    // A deployment where USDT has precision 8 on BSC and 6 elsewhere.
    const deployment: Deployment = {
      networks: base.networks.map((n) =>
        n.id === '3' ? { ...n, currencies: n.currencies.map((c) => (c.code === 'USDT' ? { ...c, precision: 8 } : c)) } : n,
      ),
    };
    const seven = standardBody({ total_amount: '10.1234567' });
    expect(codeOf(plan({ ...seven, receive_network: '3' }, 'standard', { deployment }))).toBe(0);
    expect(codeOf(plan({ ...seven, receive_network: '3,4' }, 'standard', { deployment }))).toBe(41018);
    expect(codeOf(plan(seven, 'standard', { deployment }))).toBe(41018);
    const p = planOf(plan({ ...seven, receive_network: '3' }, 'standard', { deployment }));
    expect(p.pricing.precision).toBe(8);
    expect(p.options[0]?.amount).toBe(1_012_345_670n);
  });
});

describe('times (41021, 41012)', () => {
  it('defaults the deadline to now + 30 minutes', () => {
    expect(planOf(plan(standardBody())).expireTime).toBe(NOW + 1800);
    expect(planOf(plan(standardBody(), 'standard', { defaultTimeoutSeconds: 600 })).expireTime).toBe(NOW + 600);
    expect(planOf(plan(standardBody())).merchantOrderTimeout).toBeNull();
  });
  it('refuses a timeout not after the order time, then one not in the future', () => {
    expect(codeOf(plan(standardBody({ merchant_order_time: NOW + 60, merchant_order_timeout: NOW + 60 })))).toBe(41021);
    expect(codeOf(plan(standardBody({ merchant_order_timeout: NOW })))).toBe(41012);
    expect(codeOf(plan(standardBody({ merchant_order_timeout: NOW - 11 })))).toBe(41021);
  });
  it('accepts a timeout one second ahead and caps one beyond 7 days', () => {
    expect(planOf(plan(standardBody({ merchant_order_timeout: NOW + 1 }))).expireTime).toBe(NOW + 1);
    const far = planOf(plan(standardBody({ merchant_order_timeout: NOW + 30 * 86400 })));
    expect(far.expireTime).toBe(NOW + 7 * 86400);
    expect(far.merchantOrderTimeout).toBe(NOW + 30 * 86400);
    expect(planOf(plan(standardBody({ merchant_order_timeout: NOW + 7 * 86400 }))).expireTime).toBe(NOW + 7 * 86400);
    expect(planOf(plan(standardBody({ merchant_order_timeout: NOW + 7200 }), 'standard', { maxTimeoutSeconds: 3600 })).expireTime).toBe(NOW + 3600);
  });
});

describe('URLs (41001, 41000)', () => {
  it('accepts absolute http(s) URLs of up to 512 characters', () => {
    const long = `https://example.com/${'a'.repeat(512 - 20)}`;
    expect(long).toHaveLength(512);
    const p = planOf(plan(standardBody({ notify_url: long, redirect_url: 'http://localhost:8080/done?x=1#top' })));
    expect(p.notifyUrl).toBe(long);
  });
  it('refuses a 513-character notify_url with 41001 (its own rule, not 40009)', () => {
    expect(codeOf(plan(standardBody({ notify_url: `https://example.com/${'a'.repeat(493)}` })))).toBe(41001);
  });
  it('checks notify_url before redirect_url', () => {
    expect(codeOf(plan(standardBody({ notify_url: 'notify', redirect_url: 'redirect' })))).toBe(41001);
    expect(codeOf(plan(standardBody({ redirect_url: 'javascript:alert(1)' })))).toBe(41000);
  });
  it('treats an empty URL as not sent', () => {
    expect(planOf(plan(standardBody({ notify_url: '' }))).notifyUrl).toBeNull();
  });
});

describe('networks (41027, 41031, 41035)', () => {
  it('defaults to every network carrying the currency where the merchant has a wallet', () => {
    expect(planOf(plan(standardBody())).options.map((o) => o.network)).toEqual(['2', '3', '4']);
    const onlyPolygon = merchant({ wallets: { '4': ADDR.wallet, '5': ADDR.wallet } });
    expect(planOf(plan(standardBody(), 'standard', { merchant: onlyPolygon })).options.map((o) => o.network)).toEqual(['4']);
  });
  it('accepts receive_network as a string list or a number', () => {
    expect(planOf(plan(standardBody({ receive_network: '4,2' }))).options.map((o) => o.network)).toEqual(['4', '2']);
    expect(planOf(plan(standardBody({ receive_network: 3 }))).options.map((o) => o.network)).toEqual(['3']);
    expect(planOf(plan(standardBody({ receive_network: '3' }))).options.map((o) => o.network)).toEqual(['3']);
  });
  it.each(['1', '6', '9', '2,2', '02', '0'])('refuses receive_network %j with 41027', (rn) => {
    expect(codeOf(plan(standardBody({ receive_network: rn })))).toBe(41027);
  });
  it('refuses a network the deployment does not run with 41027', () => {
    const deployment: Deployment = { networks: mainnetDeployment().networks.filter((n) => n.id !== '4') };
    expect(codeOf(plan(standardBody({ receive_network: '4' }), 'standard', { deployment }))).toBe(41027);
  });
  it('refuses a requested network that does not carry the currency with 41031', () => {
    expect(codeOf(plan(standardBody({ receive_network: '2,5' })))).toBe(41031);
    expect(codeOf(plan(standardBody({ merchant_order_currency: 'ETH', receive_network: '3' })))).toBe(41031);
  });
  it('refuses a requested network without the merchant wallet with 41035', () => {
    const m = merchant({ wallets: { '2': ADDR.wallet, '4': '' } });
    expect(codeOf(plan(standardBody({ receive_network: '2,4' }), 'standard', { merchant: m }))).toBe(41035);
    expect(codeOf(plan(standardBody({ receive_network: '2' }), 'standard', { merchant: m }))).toBe(0);
    expect(codeOf(plan(standardBody(), 'standard', { merchant: merchant({ wallets: { '5': ADDR.wallet } }) }))).toBe(41035);
  });
});

describe('payment options and fees', () => {
  it('gives 6-decimal USDT and 18-decimal USDT (BSC) the same amount in their own base units', () => {
    const p = planOf(plan(standardBody()));
    const eth = p.options.find((o) => o.network === '2');
    const bsc = p.options.find((o) => o.network === '3');
    expect(eth).toMatchObject({ currency: 'USDT', decimals: 6, precision: 6, amount: 10_500_000n, amountBase: 10_500_000n, usdRate: '1' });
    expect(eth?.contract).toBe('0xdac17f958d2ee523a2206206994597c13d831ec7');
    expect(bsc).toMatchObject({ currency: 'USDT', decimals: 18, precision: 6, amount: 10_500_000n, amountBase: 105n * E18 / 10n });
    // fee = max(amount × 0.5 %, minimum): 1.00 USD on Ethereum, 0.10 USD on BSC.
    expect(eth?.fee).toBe(1_000_000n);
    expect(bsc?.fee).toBe(E18 / 10n);
    expect(p.split).toBeNull();
    expect(p.divideDetailWire).toBeNull();
  });
  it('charges the proportional fee when it exceeds the minimum, rounded up to a base unit', () => {
    expect(optionOn(standardBody({ total_amount: '1000' }), '2')?.fee).toBe(5_000_000n);
    // 333.333333 × 0.005 = 1.666666665 -> 1.666667 USDT
    expect(optionOn(standardBody({ total_amount: '333.333333' }), '4')?.fee).toBe(1_666_667n);
  });
  it('converts the USD minimum for a native coin at its rate, rounded up', () => {
    // 1 USD at ETH = 3000: 1/3000 ETH = 333333333333333.33… wei -> …334
    expect(optionOn(standardBody({ merchant_order_currency: 'ETH', total_amount: '0.01' }), '2')?.fee).toBe(333_333_333_333_334n);
  });
  it('drops a network whose amount does not exceed its minimum fee (boundary: equal)', () => {
    // 1.00 USDT equals Ethereum's minimum: dropped there, kept on BSC and Polygon.
    expect(planOf(plan(standardBody({ total_amount: '1.00' }))).options.map((o) => o.network)).toEqual(['3', '4']);
    expect(planOf(plan(standardBody({ total_amount: '1.000001' }))).options.map((o) => o.network)).toEqual(['2', '3', '4']);
    expect(codeOf(plan(standardBody({ total_amount: '0.10' })))).toBe(41028);
    expect(planOf(plan(standardBody({ total_amount: '0.100001' }))).options.map((o) => o.network)).toEqual(['3', '4']);
  });
  it('drops a pair whose fee would be the whole amount (a high fee rate on a tiny amount): nothing would be left for the merchant', () => {
    const deployment = mainnetDeployment();
    const steep = { networks: deployment.networks.map((n) => ({ ...n, feeRate: '0.9', minFeeUsd: '0.000001' })) };
    // 0.000005 USDT = 5 base units on Ethereum and Polygon (6 decimals): 0.9 × 5 = 4.5, rounded
    // up to 5, the whole amount. On BNB Smart Chain (18 decimals) the fee is 90 % of 5 × 10^12.
    expect(codeOf(plan(standardBody({ total_amount: '0.000005', receive_network: '2,4' }), 'standard', { deployment: steep }))).toBe(41028);
    expect(planOf(plan(standardBody({ total_amount: '0.000005' }), 'standard', { deployment: steep })).options.map((o) => [o.network, o.fee])).toEqual([['3', 45n * 10n ** 11n]]);
    // 0.000010: a fee of 9 leaves 1 base unit to the merchant.
    const p = planOf(plan(standardBody({ total_amount: '0.00001', receive_network: '2,4' }), 'standard', { deployment: steep }));
    expect(p.options.map((o) => [o.amountBase, o.fee])).toEqual([[10n, 9n], [10n, 9n]]);
  });
  it('treats a currency without a rate as no candidate (41028 when nothing is left)', () => {
    const rates = rateTableFrom({ USDC: '1' });
    expect(codeOf(plan(standardBody(), 'standard', { rates }))).toBe(41028);
    expect(codeOf(plan(standardBody({ merchant_order_currency: 'USDC' }), 'standard', { rates }))).toBe(0);
  });
  it('carries the optional texts through unchanged', () => {
    const p = planOf(plan(standardBody({ merchant_order_desc: '描述', goods_info: 'g', merchant_order_no: 'MO-1', merchant_application_user_id: 'u1', business_info: 'b', extension: '{"k":1}' })));
    expect(p).toMatchObject({ merchantOrderDesc: '描述', goodsInfo: 'g', merchantOrderNo: 'MO-1', merchantApplicationUserId: 'u1', businessInfo: 'b', extension: '{"k":1}', edition: 'standard', merchantNo: 'M1001' });
  });
});

describe('splits in a standard order', () => {
  const withSplit = (patch: Record<string, unknown>, body: Record<string, unknown> = {}) =>
    standardBody({ divide_detail: baseSplit(patch), ...body });

  it('normalises the split, echoes it canonically and divides each option exactly in base units', () => {
    const p = planOf(plan(withSplit({ merchant_amount: '2.00', other_details: [{ receiver_addr: ADDR.other1, amount: '0.50' }] })));
    expect(p.split).toEqual({ seller: { address: ADDR.seller, amount: 8_000_000n }, merchantAmount: 2_000_000n, others: [{ address: ADDR.other1, amount: 500_000n }] });
    expect(p.divideDetailWire).toEqual({ seller_amount: '8', seller_addr: ADDR.seller, merchant_amount: '2', other_details: [{ receiver_addr: ADDR.other1, amount: '0.5' }] });
    const bsc = p.options.find((o) => o.network === '3');
    expect(bsc?.split).toEqual({ seller: { address: ADDR.seller, amount: 8n * E18 }, merchant: 2n * E18, others: [{ address: ADDR.other1, amount: E18 / 2n }] });
  });
  it('refuses a sum off by one unit either way (41008)', () => {
    expect(codeOf(plan(withSplit({ seller_amount: '7.999999' })))).toBe(41008);
    expect(codeOf(plan(withSplit({ seller_amount: '8.000001' })))).toBe(41008);
  });
  it('drops networks where merchant_amount equals the fee; 41007 when none is left', () => {
    expect(codeOf(plan(withSplit({ seller_amount: '10.40', merchant_amount: '0.10' })))).toBe(41007);
    const p = planOf(plan(withSplit({ seller_amount: '10.399999', merchant_amount: '0.100001' })));
    expect(p.options.map((o) => o.network)).toEqual(['3', '4']);
  });
  it('requires the seller pair (41015) and the merchant share (41026)', () => {
    expect(codeOf(plan(withSplit({ seller_amount: undefined })))).toBe(41015);
    expect(codeOf(plan(withSplit({ seller_addr: '' })))).toBe(41015);
    expect(codeOf(plan(standardBody({ divide_detail: {} })))).toBe(41015);
    expect(codeOf(plan(withSplit({ merchant_amount: null })))).toBe(41026);
  });
  it.each(['0', '-1', '1e1', 'abc', ''])('refuses split amount %j with 41014', (a) => {
    expect(codeOf(plan(withSplit({ other_details: [{ receiver_addr: ADDR.other1, amount: a }] })))).toBe(41014);
  });
  it('refuses split amounts beyond the order precision (41019)', () => {
    expect(codeOf(plan(withSplit({ merchant_amount: '2.5000001' })))).toBe(41019);
  });
  it.each([
    ['too short', '0x1234'],
    ['no 0x', ADDR.seller.slice(2)],
    ['bad checksum', ADDR.seller.replace('a', 'A')],
    ['non-hex', `0x${'g'.repeat(40)}`],
  ])('refuses a %s address (41032)', (_, addr) => {
    expect(codeOf(plan(withSplit({ seller_addr: addr })))).toBe(41032);
  });
  it('refuses an empty receiver_addr with 41032 (an empty seller_addr is a missing seller, 41015)', () => {
    expect(codeOf(plan(withSplit({ merchant_amount: '2.00', other_details: [{ receiver_addr: '', amount: '0.5' }] })))).toBe(41032);
  });
  it('accepts all-lower and all-upper addresses without checksum', () => {
    expect(codeOf(plan(withSplit({ seller_addr: ADDR.seller.toLowerCase() })))).toBe(0);
    expect(codeOf(plan(withSplit({ seller_addr: `0x${ADDR.seller.slice(2).toUpperCase()}` })))).toBe(0);
  });
  it('tells a repeated entry (41029) from a repeated address (41033)', () => {
    const same = { receiver_addr: ADDR.other1, amount: '0.25' };
    expect(codeOf(plan(withSplit({ merchant_amount: '2.00', other_details: [same, same] })))).toBe(41029);
    const other = [{ receiver_addr: ADDR.other1, amount: '0.20' }, { receiver_addr: ADDR.other1.toLowerCase(), amount: '0.30' }];
    expect(codeOf(plan(withSplit({ merchant_amount: '2.00', other_details: other })))).toBe(41033);
    expect(codeOf(plan(withSplit({ merchant_amount: '2.00', other_details: [{ receiver_addr: ADDR.seller, amount: '0.5' }] })))).toBe(41033);
  });
  it('refuses the merchant CA address of a candidate network only (41034)', () => {
    const m = (n: '2' | '5') => merchant({ caAddresses: { [n]: ADDR.seller.toLowerCase() } });
    expect(codeOf(plan(withSplit({}), 'standard', { merchant: m('2') }))).toBe(41034);
    expect(codeOf(plan(withSplit({}), 'standard', { merchant: m('5') }))).toBe(0);
    expect(codeOf(plan(withSplit({}, { receive_network: '3' }), 'standard', { merchant: m('2') }))).toBe(0);
  });
  it('allows 20 receivers and refuses 21 (43011)', () => {
    const others = (n: number) => Array.from({ length: n }, (_, i) => ({ receiver_addr: addressN(i), amount: '0.01' }));
    expect(codeOf(plan(withSplit({ merchant_amount: '2.31', other_details: others(19) })))).toBe(0);
    expect(codeOf(plan(withSplit({ merchant_amount: '2.30', other_details: others(20) })))).toBe(43011);
  });
});

describe('split_details (compatibility form)', () => {
  const entry = (split_type: unknown, split_purpose: unknown, receiver: string, amount: string) => ({ split_type, split_purpose, receiver, amount });
  const seller = entry(2, 1, ADDR.seller, '8.00');
  const fee = entry(1, 2, 'M1001', '2.50');
  const withEntries = (...entries: unknown[]) => standardBody({ split_details: entries });

  it('maps onto divide_detail', () => {
    const p = planOf(plan(withEntries(seller, entry('1', '2', 'M1001', '2.00'), entry(1, 3, 'M1001', '0.50'))));
    expect(p.split).toEqual({ seller: { address: ADDR.seller, amount: 8_000_000n }, merchantAmount: 2_500_000n, others: [] });
    expect(p.divideDetailWire).toEqual({ seller_amount: '8', seller_addr: ADDR.seller, merchant_amount: '2.5', other_details: [] });
  });
  it('applies the per-entry rules first, over all entries', () => {
    expect(codeOf(plan(withEntries(entry(3, 1, ADDR.seller, '8'), fee)))).toBe(41005);
    expect(codeOf(plan(withEntries(entry(2, 4, ADDR.seller, '8'), fee)))).toBe(41006);
    // entry 0 has a bad purpose, entry 1 a bad type: 41005 wins.
    expect(codeOf(plan(withEntries(entry(2, 9, ADDR.seller, '8'), entry(7, 2, 'M1001', '2.5'))))).toBe(41005);
    expect(codeOf(plan(withEntries(entry(2, 2, ADDR.seller, '8'), fee)))).toBe(41025);
    expect(codeOf(plan(withEntries(entry(1, 1, 'M1001', '8'), fee)))).toBe(41025);
    // a per-entry fault wins over a structural one (no purpose-1 entry)
    expect(codeOf(plan(withEntries(entry(1, 4, 'M1001', '8'))))).toBe(41006);
  });
  it('then the structural rules: 41015, 41016, 41026, 41017', () => {
    expect(codeOf(plan(withEntries(fee)))).toBe(41015);
    expect(codeOf(plan(standardBody({ split_details: [] })))).toBe(41015);
    expect(codeOf(plan(withEntries(seller, seller, fee)))).toBe(41016);
    expect(codeOf(plan(withEntries(entry(2, 1, ADDR.seller, '10.50'))))).toBe(41026);
    expect(codeOf(plan(withEntries(seller, entry(1, 2, 'M2002', '2.50'))))).toBe(41017);
    expect(codeOf(plan(withEntries(seller, entry(1, 2, 'M1001', '2.00'), entry(1, 3, 'M2002', '0.50'))))).toBe(41017);
  });
  it('then the divide_detail rules', () => {
    expect(codeOf(plan(withEntries(entry(2, 1, '0xabc', '8.00'), fee)))).toBe(41032);
    expect(codeOf(plan(withEntries(seller, entry(1, 2, 'M1001', '0'))))).toBe(41014);
    expect(codeOf(plan(withEntries(seller, entry(1, 2, 'M1001', '2.5000001'))))).toBe(41019);
    expect(codeOf(plan(withEntries(seller, entry(1, 2, 'M1001', '2.49'))))).toBe(41008);
    const half = entry(1, 2, 'M1001', '1.25');
    expect(codeOf(plan(withEntries(seller, half, half)))).toBe(41029);
  });
});
