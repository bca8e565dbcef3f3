// The cashier's JSON API (PROTOCOL §15): what the payer's page (and wallets) read about an
// order, and choosing the (network, currency) to pay with, which fixes the deposit address: the
// CREATE2 address committed to that option's settlement plan (§15a). The `t` token is the only
// credential; a wrong one looks exactly like an unknown order.
import { timingSafeEqual } from 'node:crypto';
import { formatAmount } from '@sparkpay/protocol';
import { toChecksumAddress } from '../domain/address.js';
import { currencyOn, findNetwork, NETWORKS, parseNetworkId, type Deployment, type NetworkDeployment } from '../domain/catalogue.js';
import type { CloseReason, PayException, PayStatus } from '../domain/lifecycle-types.js';
import { MAX_PLAN_TOTAL, planToJson, settlementPlan } from '../domain/settlement-plan.js';
import { nowSeconds, type Clock, type DepositAddressDeriver, type Store } from './ports.js';
import { MAX_LISTED_PAYMENTS, orderSlack, selectedOption } from './order-view.js';
import { shownTxHash, type DepositAddressRecord, type Edition, type OrderOptionRecord, type OrderRecord, type PaymentRecord, type PaymentStatus } from './records.js';

export interface CashierDeps {
  store: Store;
  clock: Clock;
  deployment: Deployment;
  deposits: DepositAddressDeriver;
}

export type CashierRefusal = { ok: false; reason: 'NOT_FOUND' | 'BAD_REQUEST' | 'NOT_SELECTABLE' | 'UNAVAILABLE'; message: string };

export interface SelectedView {
  network: string;
  /** The network's name (§5), for the payer's "send on this chain only" warning. */
  network_name: string;
  currency: string;
  chain_id: number;
  /** Blocks a payment needs on this network before it counts. */
  confirmations_required: number;
  token_contract: string | null;
  address: string;
  amount: string;
  amount_base: string;
  /** EIP-681 payment request (§15) for wallets and the QR code. */
  uri: string;
}

const tokenMatches = (expected: string, given: unknown): boolean => {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  // Compared in constant time; a length mismatch compares a with itself so timing reveals nothing but the length.
  return a.length === b.length ? timingSafeEqual(a, b) : !timingSafeEqual(a, a);
};

/** The one answer for every order a request does not open (unknown, or a wrong token). */
export const cashierNotFound = (): CashierRefusal => ({ ok: false, reason: 'NOT_FOUND', message: 'no such payment order' });

/** What an order number can look like; anything else (a NUL byte, a path) is unknown without asking the database. */
const ORDER_NO = /^[A-Za-z0-9_-]{1,64}$/;
/** Compared with a given token when the order does not exist, so both cases cost the same. */
const NO_TOKEN = 'x'.repeat(32);

/**
 * Whether `token` opens `paymentOrderNo`. One indexed read of the token column whether or not
 * the order exists, and a constant-time comparison either way: the time taken does not tell an
 * unknown order from a wrong token.
 */
/**
 * Whether the order's pair is still one the network offers: its token the one configured now
 * (same contract and decimals: the scan watches only the configured contracts, so money sent in
 * a token taken off the configuration, or moved to another contract, would never be seen), and
 * not refused by the network check.
 */
function pairOffered(deps: CashierDeps, network: NetworkDeployment, o: Pick<OrderOptionRecord, 'currency' | 'contract' | 'decimals' | 'amountBase'>): boolean {
  // An order created before such pairs were left out at creation: no plan could pay it out.
  if (o.amountBase >= MAX_PLAN_TOTAL) return false;
  const configured = currencyOn(network, o.currency);
  if (!configured || configured.decimals !== o.decimals || (configured.contract?.toLowerCase() ?? null) !== (o.contract?.toLowerCase() ?? null)) return false;
  return deps.deposits.available?.(network, o.contract) !== false;
}

export async function cashierTokenValid(store: Store, paymentOrderNo: string, token: unknown): Promise<boolean> {
  if (typeof paymentOrderNo !== 'string' || !ORDER_NO.test(paymentOrderNo)) {
    tokenMatches(NO_TOKEN, token);
    return false;
  }
  const expected = await store.orders.cashierToken(paymentOrderNo);
  const matches = tokenMatches(expected ?? NO_TOKEN, token);
  return expected !== null && matches;
}

async function loadOrder(store: Store, paymentOrderNo: string, token: unknown): Promise<OrderRecord | null> {
  if (!(await cashierTokenValid(store, paymentOrderNo, token))) return null;
  return store.orders.get(paymentOrderNo);
}

function eip681(network: NetworkDeployment, option: OrderOptionRecord, address: string, amountBase: bigint): string {
  return option.contract
    ? `ethereum:${toChecksumAddress(option.contract)}@${network.chainId}/transfer?address=${address}&uint256=${amountBase}`
    : `ethereum:${address}@${network.chainId}?value=${amountBase}`;
}

/**
 * What is left to send to the chosen pair once part of its amount arrived (seen, final or not):
 * 0 when nothing arrived yet, when all of it did, or when no pair is chosen.
 */
function remainderOf(s: OrderRecord['state'], slack: bigint): bigint {
  if (s.due === null || s.received.seen === 0n) return 0n;
  // Within the slack below the currency's precision, what arrived is the amount due (lifecycle);
  // beyond it the payer is asked for whole units of that precision (0.5 USDT, never
  // 0.500000000001): the least that makes the total the amount due.
  const need = s.due - s.received.seen - slack;
  if (need <= 0n) return 0n;
  const unit = slack + 1n;
  return ((need + unit - 1n) / unit) * unit;
}


/**
 * Why nothing more is to be sent to the order's chosen pair now, or null while something is: the
 * one rule for the order view (which then hands out no address or payment link) and for select
 * (which refuses). Money sent after that would only be PAID_LATE, or excess, for the merchant to
 * sort out.
 */
function nothingToSend(s: OrderRecord['state'], nowSec: number, slack: bigint): string | null {
  if (s.status === 'CLOSED') return 'the order is closed; do not send anything';
  // Nothing more is to be sent to a paid order (the page shows it paid; a wallet asking is told so).
  if (s.status === 'PAID' || s.status === 'COMPLETED') return `the order is ${s.status}; do not send anything more`;
  if (s.due !== null && s.received.seen > 0n && remainderOf(s, slack) === 0n) return 'the amount due has arrived and is being confirmed; do not send anything more';
  // Past the deadline the expiry worker closes the order (once the chain scan has covered the
  // deadline): nothing more is to be sent, whatever arrived before (the order view still shows
  // the chosen pair while money sent in time confirms).
  if (nowSec >= s.expireTime) return 'the payment deadline has passed';
  return null;
}

/** The chosen pair: its deposit address and `amountBase` to send (the option's whole amount unless said). */
function selectedView(network: NetworkDeployment, option: OrderOptionRecord, deposit: DepositAddressRecord, amountBase: bigint = option.amountBase): SelectedView {
  const address = toChecksumAddress(deposit.address);
  return {
    network: option.network,
    network_name: NETWORKS[option.network].name,
    currency: option.currency,
    chain_id: network.chainId,
    confirmations_required: network.chain.confirmations,
    token_contract: option.contract ? toChecksumAddress(option.contract) : null,
    address,
    amount: formatAmount(amountBase, option.decimals),
    amount_base: amountBase.toString(),
    uri: eip681(network, option, address, amountBase),
  };
}

/**
 * Where the payer stands, in the payer's terms: choose an option, send, wait for confirmations,
 * send the rest (final payments short of the amount due), done, or too late.
 */
export type PayerState = 'CHOOSE' | 'AWAITING' | 'CONFIRMING' | 'UNDERPAID' | 'CLOSING' | 'PAID' | 'EXPIRED' | 'CLOSED';

export interface CashierPaymentView {
  tx_hash: string;
  amount: string;
  confirmations: number;
  status: PaymentStatus;
}

export interface CashierOrderView {
  payment_order_no: string;
  merchant_name: string;
  merchant_order_desc: string;
  edition: Edition;
  pricing_amount: string;
  pricing_currency: string;
  pay_status: PayStatus;
  pay_exception: PayException | null;
  close_reason: CloseReason | null;
  expire_time: number;
  now: number;
  options: { network: string; currency: string; amount: string }[];
  /** Networks among the options that this gateway can give a deposit address on. */
  available_networks: string[];
  selected: SelectedView | null;
  received: { seen: string; final: string } | null;
  /** Final money in the selected pair beyond the amount due (an OVERPAID order's excess), in its currency; null when none. */
  excess: string | null;
  /**
   * Shown to the payer only once the order is paid (the page goes there) or has ended unpaid
   * (expired or closed: the page links back to it); null while the order is open.
   */
  redirect_url: string | null;
  payer_state: PayerState;
  /**
   * Transfers to the selected option's address, oldest first (reverted ones included): all of them
   * up to MAX_LISTED_PAYMENTS, past that the largest (dust sent to the address does not grow every
   * poll of the page without bound, nor push out the payer's own payment).
   */
  payments: CashierPaymentView[];
  /** How many transfers in the selected pair there are in all (more than `payments` lists past the bound). */
  payments_count: number;
  /** What is still to send to the same address, in the selected currency; null when nothing is. */
  remaining: string | null;
  /** The same in base units (what a wallet's payment request carries). */
  remaining_base: string | null;
  /** No further change is expected from the payer's side (paid, or closed). */
  final: boolean;
  /**
   * Money at the address of another of the order's pairs than the one it counts (a payer who paid
   * an address handed out before a switch), per pair: it does not count toward the order (the
   * merchant sorts it out). Empty before a pair is chosen.
   */
  elsewhere: { network: string; currency: string; amount: string }[];
}

/**
 * What the payer should do now. Past the deadline an order not paid yet is CLOSING: nothing more
 * should be sent, and the expiry closes it once the chain scan has covered the deadline (a payment
 * already sent is counted meanwhile); money still confirming keeps it CONFIRMING.
 */
export function payerState(order: OrderRecord, hasSelection: boolean, nowSeconds: number): PayerState {
  const s = order.state;
  const overdue = nowSeconds >= s.expireTime;
  if (overdue && (s.status === 'PENDING' || (s.status === 'PAYING' && s.received.seen === s.received.final))) return 'CLOSING';
  switch (s.status) {
    case 'PAID':
    case 'COMPLETED':
      return 'PAID';
    case 'CLOSED':
      return s.closeReason === 'EXPIRED' ? 'EXPIRED' : 'CLOSED';
    case 'PAYING':
      // Everything seen is final and still short: the payer must send the rest.
      return s.received.seen === s.received.final && s.due !== null && s.received.final + orderSlack(order) < s.due ? 'UNDERPAID' : 'CONFIRMING';
    case 'PENDING':
      return hasSelection ? 'AWAITING' : 'CHOOSE';
    default: {
      const never: never = s.status;
      throw new Error(`unknown status ${String(never)}`);
    }
  }
}

/** The selected pair's transfers as the page lists them (paymentViews), and how many there are. */
function paymentViews(payments: readonly PaymentRecord[], option: OrderOptionRecord): { list: CashierPaymentView[]; count: number } {
  const inPair = payments.filter((p) => p.network === option.network && p.currency === option.currency);
  const oldestFirst = (a: PaymentRecord, b: PaymentRecord) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex;
  inPair.sort(oldestFirst);
  // Past the bound the largest, the older first among equal ones; then listed oldest first again.
  const kept = inPair.length <= MAX_LISTED_PAYMENTS ? inPair : [...inPair].sort((a, b) => (a.amount === b.amount ? oldestFirst(a, b) : a.amount > b.amount ? -1 : 1)).slice(0, MAX_LISTED_PAYMENTS).sort(oldestFirst);
  return {
    list: kept.map((p) => ({ tx_hash: shownTxHash(p), amount: formatAmount(p.amount, option.decimals), confirmations: p.confirmations, status: p.status })),
    count: inPair.length,
  };
}

/** Money still on the chain at the addresses of the order's other pairs, per pair (cashier view `elsewhere`). */
function elsewhereOf(order: OrderRecord, counted: OrderOptionRecord, payments: readonly PaymentRecord[]): CashierOrderView['elsewhere'] {
  const sums = new Map<OrderOptionRecord, bigint>();
  for (const p of payments) {
    if (p.status === 'REVERTED' || (p.network === counted.network && p.currency === counted.currency)) continue;
    const option = order.options.find((o) => o.network === p.network && o.currency === p.currency);
    if (option) sums.set(option, (sums.get(option) ?? 0n) + p.amount);
  }
  return [...sums].map(([o, amount]) => ({ network: o.network, currency: o.currency, amount: formatAmount(amount, o.decimals) }));
}

/** The order as the payer's page shows it. */
export async function cashierOrder(deps: CashierDeps, paymentOrderNo: string, token: unknown): Promise<{ ok: true; data: CashierOrderView } | CashierRefusal> {
  const order = await loadOrder(deps.store, paymentOrderNo, token);
  if (!order) return cashierNotFound();
  let selected: SelectedView | null = null;
  const option = selectedOption(order);
  const s = order.state;
  // Something arrived but not enough: the rest goes to the same address.
  const slack = orderSlack(order);
  const short = option ? remainderOf(s, slack) : 0n;
  // The chosen pair as a later start configured it (its token taken off or moved: the scan no
  // longer watches that contract). Nothing arrived yet: the payer chooses again among the pairs
  // offered; else its address is handed out no more.
  const now = nowSeconds(deps.clock);
  let chosenOffered = true;
  let sendable = false;
  if (option) {
    const deposit = await deps.store.depositAddresses.get(order.paymentOrderNo, option.network, option.currency);
    const network = findNetwork(deps.deployment, option.network);
    chosenOffered = !network || pairOffered(deps, network, option);
    sendable = nothingToSend(s, now, slack) === null && chosenOffered;
    // What to send now, as select answers it: the rest once part has arrived (a wallet following
    // this API's payment link used to be asked for the whole amount again, beside `remaining`).
    // Once nothing is to be sent (closed, past the deadline, paid) the pair's whole amount due:
    // the remainder there read as a sum the payer still owed on an order that had ended.
    if (deposit && network && (chosenOffered || s.status !== 'PENDING')) selected = selectedView(network, option, deposit, sendable && short > 0n ? short : option.amountBase);
  }
  const [merchant, payments] = await Promise.all([deps.store.merchants.get(order.merchantNo), option ? deps.store.payments.listByOrder(order.paymentOrderNo) : []]);
  const state = payerState(order, selected !== null, now);
  // Whether the payer may still send (a remainder is shown): not past the deadline, and the pair
  // still offered (else the remainder was asked for with no address to send it to).
  const open = (state === 'AWAITING' || state === 'CONFIRMING' || state === 'UNDERPAID') && now < s.expireTime && chosenOffered;
  // The address and payment link are handed out (a wallet reading this API included) only while
  // something is still to be sent, as select answers them.
  if (selected && !sendable) selected = { ...selected, address: '', uri: '' };
  const listed = option && selected ? paymentViews(payments, option) : { list: [], count: 0 };
  const offered = order.options.filter((o) => {
    const network = findNetwork(deps.deployment, o.network);
    return !network || pairOffered(deps, network, o);
  });
  return {
    ok: true,
    data: {
      payment_order_no: order.paymentOrderNo,
      merchant_name: merchant?.name ?? '',
      merchant_order_desc: order.merchantOrderDesc ?? '',
      edition: order.edition,
      pricing_amount: order.pricingAmountWire,
      pricing_currency: order.pricingCurrency,
      pay_status: s.status,
      pay_exception: s.exception ?? null,
      close_reason: s.closeReason,
      expire_time: s.expireTime,
      now,
      // The pairs open to the payer: a token the network check refused is not offered (nor a
      // network left without one), though the order was priced in it.
      options: offered
        .sort((a, b) => (a.network === b.network ? a.currency.localeCompare(b.currency) : a.network.localeCompare(b.network)))
        .map((o) => ({ network: o.network, currency: o.currency, amount: formatAmount(o.amountBase, o.decimals) })),
      available_networks: [...new Set(offered.map((o) => o.network))].filter((id) => {
        const network = findNetwork(deps.deployment, id);
        return !!network?.chain.factory && !!network.chain.feeAddress && !!merchant?.wallets[id] && deps.deposits.available?.(network) !== false;
      }),
      selected,
      received: selected && option ? { seen: formatAmount(s.received.seen, option.decimals), final: formatAmount(s.received.final, option.decimals) } : null,
      // Only an order paid beyond its amount by more than the slack below the currency's
      // precision (what the lifecycle calls OVERPAID): not a fraction of a unit it takes as the
      // amount due, nor money that arrived at a closed order (PAID_LATE).
      excess:
        option && s.due !== null && (s.status === 'PAID' || s.status === 'COMPLETED') && s.received.final > s.due + orderSlack(order)
          ? formatAmount(s.received.final - s.due, option.decimals)
          : null,
      // The page goes there once paid, and links back there once the order ended unpaid (README
      // "Cashier page"); nulling it for a closed order left the payer no way back to the shop.
      redirect_url: s.status === 'PAID' || s.status === 'COMPLETED' || s.status === 'CLOSED' ? order.redirectUrl : null,
      payer_state: state,
      payments: listed.list,
      payments_count: listed.count,
      remaining: open && option && short > 0n ? formatAmount(short, option.decimals) : null,
      remaining_base: open && option && short > 0n ? short.toString() : null,
      final: state === 'PAID' || state === 'EXPIRED' || state === 'CLOSED',
      elsewhere: option ? elsewhereOf(order, option, payments) : [],
    },
  };
}

/**
 * The payer chooses how to pay. The first choice of a pair computes and stores its deposit
 * address; the same pair again answers the same address. Another pair may be chosen while the
 * order is PENDING; once money was seen (PAYING) or the order is paid or closed, only the pair
 * already chosen is answered, so a payer is never shown an address that would not count.
 */
export async function selectPaymentOption(deps: CashierDeps, paymentOrderNo: string, token: unknown, body: unknown): Promise<{ ok: true; data: SelectedView } | CashierRefusal> {
  // A concurrent change of the order (another select, a payment, a close) makes the choice
  // start over on the order as it is now: the same choice made twice at once is answered twice.
  for (let attempt = 1; ; attempt += 1) {
    const result = await selectOnce(deps, paymentOrderNo, token, body);
    if (result !== CONFLICT) return result;
    if (attempt === SELECT_ATTEMPTS) return { ok: false, reason: 'NOT_SELECTABLE', message: 'the order changed meanwhile; load it again' };
  }
}

const SELECT_ATTEMPTS = 3;
const CONFLICT = Symbol('conflict');

async function selectOnce(deps: CashierDeps, paymentOrderNo: string, token: unknown, body: unknown): Promise<{ ok: true; data: SelectedView } | CashierRefusal | typeof CONFLICT> {
  const input = body as { network?: unknown; currency?: unknown } | null;
  const networkId = parseNetworkId(input?.network);
  const currency = typeof input?.currency === 'string' ? input.currency : null;
  const order = await loadOrder(deps.store, paymentOrderNo, token);
  if (!order) return cashierNotFound();
  if (!networkId || !currency) return { ok: false, reason: 'BAD_REQUEST', message: 'body must be {"network": "2".."5", "currency": "<code>"}' };
  const option = order.options.find((o) => o.network === networkId && o.currency === currency);
  if (!option) {
    const offered = order.options.map((o) => `${o.currency} on ${o.network}`).join(', ');
    return { ok: false, reason: 'BAD_REQUEST', message: `this order cannot be paid in ${currency} on network ${networkId}; it can be paid in ${offered}` };
  }
  // A closed order's address is handed to nobody, the pair already chosen included (as in cashierOrder).
  if (order.state.status === 'CLOSED') return { ok: false, reason: 'NOT_SELECTABLE', message: 'the order is closed; do not send anything' };
  const same = order.selectedNetwork === networkId && order.selectedCurrency === currency;
  if (!same && order.state.status !== 'PENDING') {
    return { ok: false, reason: 'NOT_SELECTABLE', message: `the order is ${order.state.status}; its payment option can no longer change` };
  }
  const why = nothingToSend(order.state, nowSeconds(deps.clock), orderSlack(order));
  if (why !== null) return { ok: false, reason: 'NOT_SELECTABLE', message: why };
  // A payment in the chosen pair that a reorganisation took back (the order PENDING again) is
  // usually mined again: another pair paid then is paid twice, and once the order was paid its
  // settlement pays out from the chosen pair's address only.
  if (!same && order.selectedNetwork !== null && (await pairPaidOnce(deps, order))) {
    return { ok: false, reason: 'NOT_SELECTABLE', message: 'a payment of this order left the chain and is usually mined again: its payment option can no longer change; check your wallet before sending anything' };
  }
  const network = findNetwork(deps.deployment, networkId);
  const merchant = await deps.store.merchants.get(order.merchantNo);
  const wallet = merchant?.wallets[networkId];
  const feeAddress = network?.chain.feeAddress;
  if (!network || !wallet || !feeAddress) return { ok: false, reason: 'UNAVAILABLE', message: `payments on network ${networkId} are not available on this gateway` };
  let address: string | null;
  let plan: ReturnType<typeof settlementPlan>;
  try {
    // settlementPlan refuses a plan that cannot be settled (a fee not below the merchant's share,
    // stored under an earlier fee configuration): no address for it either.
    plan = settlementPlan(order.paymentOrderNo, option, wallet, feeAddress);
    address = deps.deposits.addressFor(plan, network);
  } catch (err) {
    // A plan the factory could not pay out (an order created before its split was checked for
    // that): no address, or every payment sent to it would be stranded there.
    if (!(err instanceof RangeError)) throw err;
    return { ok: false, reason: 'UNAVAILABLE', message: `this order's settlement plan cannot be paid out on network ${networkId}: ${err.message}` };
  }
  if (address && !pairOffered(deps, network, option)) address = null;
  if (!address) {
    // The network's nodes showed it or this token not to be what the configuration says (a
    // chain id, factory, contract or decimals that differ): the operator's log names which.
    const what = deps.deposits.available?.(network) === false ? `payments on network ${networkId}` : `payments in ${currency} on network ${networkId}`;
    return { ok: false, reason: 'UNAVAILABLE', message: `${what} are not available on this gateway` };
  }
  const planJson = planToJson(plan);
  const deposit = await deps.store.transaction(async (tx) => {
    const stored = await tx.depositAddresses.insertOrGet({
      paymentOrderNo: order.paymentOrderNo,
      network: networkId,
      currency,
      address,
      token: option.contract,
      amountBase: option.amountBase,
      plan: planJson,
      createdAt: deps.clock.nowMs(),
    });
    if (!same) {
      const next: OrderRecord = {
        ...order,
        selectedNetwork: networkId,
        selectedCurrency: currency,
        state: { ...order.state, due: option.amountBase },
        version: order.version + 1,
        updatedAt: deps.clock.nowMs(),
      };
      // A concurrent change (a payment, a close, another select) wins; the choice starts over.
      if (!(await tx.orders.saveState(next, order.version))) throw new SelectionConflict();
    }
    return stored;
  }).catch((err: unknown) => (err instanceof SelectionConflict ? null : Promise.reject(err)));
  if (!deposit) return CONFLICT;
  // The pair chosen again after part of the amount arrived: what is left to send (the order view
  // shows it as `remaining`), so that a wallet following this answer does not pay it all again.
  const short = same ? remainderOf(order.state, orderSlack(order)) : 0n;
  return { ok: true, data: selectedView(network, option, deposit, short > 0n ? short : option.amountBase) };
}

class SelectionConflict extends Error {}

/** Whether money was ever seen in the order's chosen pair (a reverted payment included), or its settlement is scheduled. */
async function pairPaidOnce(deps: CashierDeps, order: OrderRecord): Promise<boolean> {
  if (await deps.store.settlements.get(order.paymentOrderNo)) return true;
  const payments = await deps.store.payments.listByOrder(order.paymentOrderNo);
  return payments.some((p) => p.network === order.selectedNetwork && p.currency === order.selectedCurrency);
}
