// What order creation needs to know about the ordering merchant (PROTOCOL §4), and the merchant
// checks that precede the order rules (§7 pinned order: 40008, 40007, 41002, 41039).

import type { NetworkId } from './catalogue.js';
import type { Refusal } from './result.js';
import { OrderErrors, refuse } from './result.js';

export interface MerchantView {
  readonly merchantNo: string;
  readonly status: 'ACTIVE' | 'INACTIVE';
  readonly onlinePayment: boolean;
  /** External wallet per network, where its funds settle; absent or "" = none (41035). */
  readonly wallets: Partial<Record<NetworkId, string>>;
  /** Custodial account address per network; no split may pay to it (41034). */
  readonly caAddresses: Partial<Record<NetworkId, string>>;
}

/**
 * The merchant checks, first failing wins: 40008 unknown merchant_no (`merchant` null), 40007
 * merchant_no is not the calling application's merchant, 41002 inactive, 41039 online payment
 * off. `appMerchantNo` is the merchant owning the AppID that signed the request.
 */
export function checkMerchant(
  merchant: MerchantView | null,
  appMerchantNo: string,
  requestMerchantNo: string,
): { readonly ok: true; readonly merchant: MerchantView } | Refusal {
  if (merchant === null) return refuse(OrderErrors.MERCHANT_NOT_FOUND, `merchant ${requestMerchantNo} does not exist`);
  if (requestMerchantNo !== appMerchantNo) {
    return refuse(OrderErrors.APP_ID_NOT_OF_MERCHANT, `the AppID does not belong to merchant ${requestMerchantNo}`);
  }
  if (merchant.status !== 'ACTIVE') return refuse(OrderErrors.MERCHANT_NOT_ACTIVATED, `merchant ${requestMerchantNo} is not active`);
  if (!merchant.onlinePayment) {
    return refuse(OrderErrors.ONLINE_PAYMENT_DISABLED, `online payment is not enabled for merchant ${requestMerchantNo}`);
  }
  return { ok: true, merchant };
}
