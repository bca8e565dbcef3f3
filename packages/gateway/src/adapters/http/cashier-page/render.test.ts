import { describe, expect, it } from 'vitest';
import type { CashierOrderView } from '../../../app/cashier.js';
import { renderPage } from './render.js';

/** A completed order's view, paid on Polygon, with `over` changed. */
const paidView = (over: Partial<CashierOrderView>): CashierOrderView => ({
  payment_order_no: 'P1',
  merchant_name: 'Shop',
  merchant_order_desc: 'Mug',
  edition: 'standard',
  pricing_amount: '2',
  pricing_currency: 'USDT',
  pay_status: 'COMPLETED',
  pay_exception: null,
  close_reason: null,
  expire_time: 2_000,
  now: 1_000,
  options: [
    { network: '2', currency: 'USDT', amount: '2' },
    { network: '4', currency: 'USDT', amount: '2' },
  ],
  available_networks: ['2', '4'],
  selected: { network: '4', network_name: 'Polygon', currency: 'USDT', chain_id: 137, confirmations_required: 64, token_contract: '0xc2132D05D31c914a87C6611C10748AEb04B58e8F', address: '', amount: '2', amount_base: '2000000', uri: '' },
  received: { seen: '2', final: '2' },
  redirect_url: null,
  payer_state: 'PAID',
  payments: [{ tx_hash: `0x${'ab'.repeat(32)}`, amount: '2', confirmations: 64, status: 'FINAL' }],
  payments_count: 1,
  remaining: null,
  remaining_base: null,
  excess: null,
  final: true,
  elsewhere: [],
  ...over,
});
const page = (v: CashierOrderView) => renderPage({ view: v, token: 't', lang: 'en', assets: { script: 'a.js', style: 'a.css' }, qr: null, selectFailed: false });

describe('the cashier page of a paid order with money at another pair\'s address (PAID_LATE)', () => {
  it('names that money once, and does not say it arrived after the order closed (the payer sent it while it was open)', () => {
    const html = page(paidView({ pay_exception: 'PAID_LATE', elsewhere: [{ network: '2', currency: 'USDT', amount: '1' }] }));
    expect(html).toContain('1 USDT arrived on Ethereum');
    expect(html).not.toContain('after the order closed');
  });
  it('says so when money came to the order after it closed', () => {
    expect(page(paidView({ pay_exception: 'PAID_LATE' }))).toContain('A payment arrived after the order closed');
  });
});

describe('the cashier page naming a payment', () => {
  const hash = `0x${'ab'.repeat(32)}`;
  const key = `balance:0x${'cd'.repeat(20)}:345`;
  it('names a transaction on the receipt, and a native-coin receipt with no transaction known by its block (never its balance key)', () => {
    const html = page(paidView({ payments: [{ tx_hash: hash, amount: '1', confirmations: 64, status: 'FINAL' }, { tx_hash: key, amount: '1', confirmations: 64, status: 'FINAL' }] }));
    expect(html).toContain(`Transaction ${hash}`);
    expect(html).toContain('Received in block 345');
    // (The page's change signature, an attribute, carries the key; no text does.)
    expect(html).not.toMatch(/>[^<]*balance:/);
  });
  it('names a reorganised payment the same way, in both languages', () => {
    const reverted = (tx: string, lang: 'en' | 'zh-CN') =>
      renderPage({
        view: paidView({ pay_status: 'PENDING', pay_exception: 'REVERTED', payer_state: 'AWAITING', final: false, received: { seen: '0', final: '0' }, payments: [{ tx_hash: tx, amount: '2', confirmations: 0, status: 'REVERTED' }] }),
        token: 't',
        lang,
        assets: { script: 'a.js', style: 'a.css' },
        qr: null,
        selectFailed: false,
      });
    expect(reverted(hash, 'en')).toContain(`Your payment of 2 USDT (transaction ${hash.slice(0, 10)}…${hash.slice(-8)}) left the chain`);
    expect(reverted(key, 'en')).toContain('Your payment of 2 USDT (received in block 345) left the chain');
    expect(reverted(key, 'zh-CN')).toContain('（于区块 345 收到）');
    expect(reverted(key, 'zh-CN')).not.toMatch(/>[^<]*balance:/);
  });
});

describe('the cashier page of an overpaid order', () => {
  const zh = (v: CashierOrderView) => renderPage({ view: v, token: 't', lang: 'zh-CN', assets: { script: 'a.js', style: 'a.css' }, qr: null, selectFailed: false });
  it('says by how much, in the pair paid, in both languages', () => {
    const v = paidView({ pay_exception: 'OVERPAID', received: { seen: '2.000001', final: '2.000001' }, excess: '0.000001' });
    expect(page(v)).toContain('You sent 0.000001 USDT more than the amount due');
    expect(zh(v)).toContain('您多付了 0.000001 USDT');
  });
  it('says only that it was more when the excess is not known in the pair shown', () => {
    const html = page(paidView({ pay_exception: 'OVERPAID', excess: null }));
    expect(html).toContain('You sent more than the amount due; the merchant has a record of the excess.');
  });
});

// A payer on the page of an order that ended unpaid had no way back to the shop but the browser's
// own history (the redirect only follows a payment).
describe('the cashier page of an order that ended unpaid', () => {
  const ended = (payer_state: 'EXPIRED' | 'CLOSED', redirect_url: string | null) =>
    page(paidView({ pay_status: 'CLOSED', close_reason: payer_state === 'EXPIRED' ? 'EXPIRED' : 'MERCHANT_CLOSED', payer_state, redirect_url, received: null, payments: [], payments_count: 0 }));
  it('links back to the merchant when the order names a redirect_url, without sending the payer there by itself', () => {
    for (const state of ['EXPIRED', 'CLOSED'] as const) {
      const html = ended(state, 'https://shop.example/back?o=1&x="y"');
      expect(html).toContain('<a id="back-to-merchant" class="button" href="https://shop.example/back?o=1&amp;x=&quot;y&quot;" rel="noreferrer">Return to the merchant</a>');
      expect(html).not.toContain('http-equiv="refresh"');
    }
  });
  it('shows no link without one, nor to anything but http(s)', () => {
    expect(ended('EXPIRED', null)).not.toContain('back-to-merchant');
    expect(ended('CLOSED', 'javascript:alert(1)')).not.toContain('back-to-merchant');
  });
});
