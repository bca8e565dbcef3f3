// Every string of the cashier page, one catalogue per language (English and Simplified
// Chinese). The type makes a key missing from a language a compile error; a test checks it
// again at run time, with the placeholders. `{name}` placeholders are filled by `t`.

export const LANGUAGES = ['en', 'zh-CN'] as const;
export type Language = (typeof LANGUAGES)[number];

const en = {
  page_title: 'Pay {merchant}',
  lang_switch: 'Language',
  lang_name: 'English',
  merchant: 'Merchant',
  order: 'Order',
  order_no: 'Payment order',
  amount_due: 'Amount',
  deadline: 'Pay before',
  time_left: 'Time left',
  days_unit: 'd',
  choose_heading: 'Choose how to pay',
  choose_hint: 'Pick the currency and the network your wallet will send on.',
  option_label: '{currency} on {network}',
  option_selected: 'selected',
  change_hint: 'You can still pay with another currency or network until money is sent.',
  pay_heading: 'Send exactly {amount} {currency}',
  network: 'Network',
  address: 'Deposit address',
  exact_amount: 'Exact amount',
  copy: 'Copy',
  copied: 'Copied',
  copy_address: 'Copy the deposit address',
  copy_amount: 'Copy the exact amount',
  qr_label: 'QR code of the payment request for {currency} on {network}',
  open_wallet: 'Open in a wallet app',
  warning_token:
    'Send only {currency} on {network} (chain ID {chain_id}), token contract {contract}. Anything sent on another network or in another token is lost.',
  warning_native: 'Send only {currency}, the native coin of {network} (chain ID {chain_id}). Anything sent on another network or in a token is lost.',
  status: 'Status',
  state_CHOOSE: 'Choose a currency and a network to see where to pay.',
  state_AWAITING: 'Waiting for your payment.',
  state_CLOSING: 'The payment deadline has passed: do not send anything now. A payment already sent is being checked on the chain before the order closes.',
  state_CONFIRMING: 'Payment seen: {n}/{m} confirmations.',
  state_CONFIRMING_unknown: 'Payment seen; waiting for confirmations.',
  state_UNDERPAID: 'Received {received} {currency}, less than the amount due.',
  pair_unavailable: 'Payments in {currency} on {network} are not available at the moment: send nothing more, and contact the merchant.',
  state_PAID: 'Paid. Thank you!',
  state_EXPIRED: 'This order expired before it was paid. Do not send anything; ask the merchant for a new order.',
  state_CLOSED: 'The merchant closed this order. Do not send anything.',
  remaining: 'Send the remaining {remaining} {currency} on {network} to the address below.',
  elsewhere: '{amount} {currency} arrived on {network} at an address this order no longer takes payment at: it does not count toward this order. Ask the merchant about it; do not send it again.',
  overpaid: 'You sent more than the amount due; the merchant has a record of the excess.',
  overpaid_by: 'You sent {excess} {currency} more than the amount due; the merchant has a record of the excess.',
  paid_late: 'A payment arrived after the order closed; the merchant has a record of it.',
  too_many_title: 'One moment',
  too_many_text: 'This page was asked for too often. It loads again by itself in a few seconds.',
  too_many_link: 'Load it now',
  reverted: 'Your payment of {amount} {currency} ({tx}) left the chain in a reorganisation and does not count for now. It is usually included again within minutes: check it in your wallet first, and send again only if your wallet shows it failed or dropped.',
  expired_partial: 'The {amount} {currency} you sent is held for the merchant; contact them about it.',
  received_so_far: 'Received so far: {amount} {currency}',
  receipt: 'Received {amount} {currency} on {network}.',
  receipt_tx: 'Transaction {tx}',
  receipt_block: 'Received in block {block}',
  tx_inline: 'transaction {tx}',
  block_inline: 'received in block {block}',
  success_heading: 'Payment received',
  redirecting: 'Returning to {merchant}…',
  back_to_merchant: 'Return to the merchant',
  stay: 'Stay on this page',
  stayed: 'You stay on this page. Return to {merchant} when you are ready.',
  success_close: 'You can close this page.',
  refresh: 'Refresh status',
  select_failed: 'That choice is no longer available. The page shows the order as it is now.',
} as const;

export type MessageKey = keyof typeof en;

const zhCN: Record<MessageKey, string> = {
  page_title: '向 {merchant} 付款',
  lang_switch: '语言',
  lang_name: '简体中文',
  merchant: '商户',
  order: '订单',
  order_no: '支付订单号',
  amount_due: '金额',
  deadline: '付款截止时间',
  time_left: '剩余时间',
  days_unit: '天',
  choose_heading: '选择付款方式',
  choose_hint: '请选择您的钱包将要使用的币种和网络。',
  option_label: '{network} 上的 {currency}',
  option_selected: '已选择',
  change_hint: '在付款之前，您仍可改用其他币种或网络。',
  pay_heading: '请准确转账 {amount} {currency}',
  network: '网络',
  address: '收款地址',
  exact_amount: '准确金额',
  copy: '复制',
  copied: '已复制',
  copy_address: '复制收款地址',
  copy_amount: '复制准确金额',
  qr_label: '{network} 上 {currency} 付款请求的二维码',
  open_wallet: '在钱包应用中打开',
  warning_token: '只能在 {network}（链 ID {chain_id}）上发送 {currency}，代币合约 {contract}。通过其他网络或其他代币发送的资产将会丢失。',
  warning_native: '只能发送 {network}（链 ID {chain_id}）的原生币 {currency}。通过其他网络或以代币形式发送的资产将会丢失。',
  status: '状态',
  state_CHOOSE: '请选择币种和网络以查看收款地址。',
  state_AWAITING: '正在等待您的付款。',
  state_CLOSING: '付款期限已过：现在请不要再转账。已发送的付款正在链上核对，核对后订单将关闭。',
  state_CONFIRMING: '已检测到付款：{n}/{m} 个确认。',
  state_CONFIRMING_unknown: '已检测到付款，正在等待确认。',
  state_UNDERPAID: '已收到 {received} {currency}，少于应付金额。',
  pair_unavailable: '{network} 上的 {currency} 付款暂不可用：请勿再付款，并联系商户。',
  state_PAID: '付款成功，谢谢！',
  state_EXPIRED: '此订单已过期，未完成付款。请不要再转账，请向商户申请新订单。',
  state_CLOSED: '商户已关闭此订单。请不要转账。',
  remaining: '请在 {network} 上向下方地址补付剩余的 {remaining} {currency}。',
  elsewhere: '{amount} {currency} 已到达本订单在 {network} 上的另一个地址，本订单已不在该地址收款，这笔款项不计入本订单。请就此联系商户，不要重复付款。',
  overpaid: '您支付的金额超过应付金额，商户已记录多付部分。',
  overpaid_by: '您多付了 {excess} {currency}，商户已记录多付部分。',
  paid_late: '订单关闭后收到一笔付款，商户已记录。',
  too_many_title: '请稍候',
  too_many_text: '此页面请求过于频繁，几秒钟后会自动重新加载。',
  too_many_link: '立即加载',
  reverted: '您的 {amount} {currency} 付款（{tx}）因链重组暂时离开了链，目前不计入。它通常会在几分钟内重新上链：请先在钱包中查看，只有钱包显示交易失败或被丢弃时才重新付款。',
  expired_partial: '您已支付的 {amount} {currency} 已为商户保留，请与商户联系。',
  received_so_far: '已收到：{amount} {currency}',
  receipt: '已在 {network} 上收到 {amount} {currency}。',
  receipt_tx: '交易 {tx}',
  receipt_block: '于区块 {block} 收到',
  tx_inline: '交易 {tx}',
  block_inline: '于区块 {block} 收到',
  success_heading: '付款已收到',
  redirecting: '正在返回 {merchant}…',
  back_to_merchant: '返回商户',
  stay: '留在此页面',
  stayed: '您将留在此页面。准备好后再返回 {merchant}。',
  success_close: '您可以关闭此页面。',
  refresh: '刷新状态',
  select_failed: '该选项已不可用。页面显示的是订单的当前状态。',
};

export const CATALOGUES: Readonly<Record<Language, Readonly<Record<MessageKey, string>>>> = { en, 'zh-CN': zhCN };

export type Translate = (key: MessageKey, values?: Record<string, string | number>) => string;

export function translator(lang: Language): Translate {
  const catalogue = CATALOGUES[lang];
  return (key, values = {}) => catalogue[key].replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
}

/** `?lang=` when it names a language; else the first Accept-Language entry (by q) we have; else English. */
export function pickLanguage(queryLang: unknown, acceptLanguage: string | undefined): Language {
  if (queryLang === 'en' || queryLang === 'zh-CN') return queryLang;
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .slice(0, 20)
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const weight = q ? Number(q.slice(2)) : 1;
      return { tag: tag.trim().toLowerCase(), weight: Number.isFinite(weight) ? weight : 0, i };
    })
    .filter((e) => e.tag && e.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.i - b.i);
  for (const { tag } of ranked) {
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
    // Simplified Chinese: zh, zh-CN, zh-SG, zh-Hans…; Traditional-only tags fall through to English.
    if (tag === 'zh' || tag === 'zh-cn' || tag === 'zh-sg' || tag.startsWith('zh-hans')) return 'zh-CN';
  }
  return 'en';
}

/** A decimal string (digits, optional fraction) with the locale's grouping and decimal mark; exact, no floats. */
export function formatDecimal(amount: string, lang: Language): string {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(amount);
  if (!m) return amount;
  const nf = new Intl.NumberFormat(lang);
  const point = nf.formatToParts(1.5).find((p) => p.type === 'decimal')?.value ?? '.';
  const int = nf.format(BigInt(m[1]!));
  return m[2] ? `${int}${point}${m[2]}` : int;
}

/** A Unix time as the locale writes a date and time, in UTC (the page re-renders it in the payer's zone). */
export function formatDeadline(unixSeconds: number, lang: Language): string {
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(unixSeconds * 1000)) + ' UTC';
}
