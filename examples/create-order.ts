// Creates a payment order, prints its cashier URL, queries it and closes it, using the SDK the
// way a merchant integration would. Configuration comes from the environment; by default it
// uses what `sparkpay dev` writes into its data directory (./.sparkpay).
//
//   npx tsc -b examples && node examples/dist/create-order.js
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  SparkPayApiError,
  SparkPayClient,
  SparkPayNetworkError,
  SparkPayResponseSignatureError,
  type CreateOrderRequest,
} from '@sparkpay/sdk';

const env = process.env;
const dataDir = resolve(env.SPARKPAY_DATA_DIR ?? '.sparkpay');

/** `sparkpay dev` records the demo AppID and merchant number here; the environment wins. */
function devIdentity(): { app_id?: string; merchant_no?: string } {
  const file = join(dataDir, 'dev.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { app_id?: string; merchant_no?: string }) : {};
}

function readKeyFile(path: string, what: string): string {
  if (!existsSync(path)) {
    throw new Error(`${what} not found at ${path}: start \`sparkpay dev\` first, or set the variable pointing to it`);
  }
  return readFileSync(path, 'utf8');
}

function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} is not set and ${join(dataDir, 'dev.json')} does not provide it (run \`sparkpay dev\`)`);
  return value;
}

async function main(): Promise<void> {
  const dev = devIdentity();
  const baseUrl = env.SPARKPAY_BASE_URL ?? 'http://127.0.0.1:8080';
  const appId = required(env.SPARKPAY_APP_ID ?? dev.app_id, 'SPARKPAY_APP_ID');
  const merchantNo = required(env.SPARKPAY_MERCHANT_NO ?? dev.merchant_no, 'SPARKPAY_MERCHANT_NO');
  const privateKeyFile = env.SPARKPAY_MERCHANT_PRIVATE_KEY_FILE ?? join(dataDir, 'merchant_private_key.pem');
  const platformKeyFile = env.SPARKPAY_PLATFORM_PUBLIC_KEY_FILE ?? join(dataDir, 'platform_public_key.pem');

  // Keys are parsed once here; a wrong key fails now rather than on the first request.
  const client = new SparkPayClient({
    baseUrl,
    appId,
    merchantPrivateKey: readKeyFile(privateKeyFile, 'merchant private key'),
    platformPublicKey: readKeyFile(platformKeyFile, 'platform public key'),
  });
  console.log(`SparkPay at ${baseUrl}, AppID ${appId}, merchant ${merchantNo}`);

  const now = Math.floor(Date.now() / 1000);
  // request_no is the idempotency key: retrying with the same value and body is safe.
  const request: CreateOrderRequest = {
    merchant_no: merchantNo,
    request_no: `demo_${now}_${Math.random().toString(36).slice(2, 8)}`,
    merchant_order_time: now,
    total_amount: env.SPARKPAY_ORDER_AMOUNT ?? '10.00', // a decimal string, never a number
    merchant_order_currency: env.SPARKPAY_ORDER_CURRENCY ?? 'USDT',
    merchant_order_timeout: now + 30 * 60,
    merchant_order_desc: 'SDK example order',
    merchant_order_no: `example-${now}`,
  };

  console.log(`\n1. create order ${request.request_no}: ${request.total_amount} ${request.merchant_order_currency}`);
  const created = await client.createOrder(request);
  console.log(`   payment_order_no ${created.payment_order_no}, status ${created.pay_status}`);
  console.log(`   expires at ${new Date(created.expire_time * 1000).toISOString()}`);
  console.log(`   cashier_url: ${created.cashier_url}`);

  console.log('\n2. query it');
  const order = await client.getOrder(merchantNo, request.request_no);
  console.log(`   status ${order.pay_status}, total ${order.total_amount} ${order.merchant_order_currency}`);
  for (const option of order.payment_options ?? []) {
    console.log(`   payable as ${option.amount} ${option.currency} on network ${option.network}`);
  }

  console.log('\n3. close it');
  const closed = await client.closeOrder({ merchant_no: merchantNo, request_no: request.request_no });
  console.log(`   status ${closed.pay_status} at ${new Date(closed.closed_time * 1000).toISOString()}`);
}

main().catch((err: unknown) => {
  if (err instanceof SparkPayApiError) {
    console.error(`SparkPay refused the request: ${err.code} ${err.message} (HTTP ${err.httpStatus}, request id ${err.requestId ?? 'n/a'})`);
  } else if (err instanceof SparkPayResponseSignatureError) {
    console.error(`response not authentic (${err.reason}): ${err.message}; are the AppID and platform_public_key.pem this application's current ones?`);
  } else if (err instanceof SparkPayNetworkError) {
    console.error(`could not reach SparkPay: ${err.message}; is \`sparkpay dev\` running?`);
  } else {
    console.error(err instanceof Error ? err.message : err);
  }
  process.exitCode = 1;
});
