// The on-chain form of a settlement plan and the deposit address it maps to (PROTOCOL §15,
// §15a), computed off-chain: the gateway hands out an order's address without a key and without
// asking the chain. Must agree byte for byte with contracts/ForwarderFactory.sol (`Plan`, `_salt`,
// `_predict`, `_initCode`); the tests on anvil compare both.
import { concat, encodeAbiParameters, getAddress, getContractAddress, isAddress, keccak256, stringToBytes, zeroAddress, type Address, type Hex } from 'viem';
import type { SettlementPlan } from '../../../domain/settlement-plan.js';
import { MAX_PLAN_TOTAL } from '../../../domain/settlement-plan.js';

/** The factory's `Plan` struct. `token` is the zero address for the native coin. */
export interface ForwarderPlan {
  /** keccak256 of the payment order number: two orders with the same split get different addresses. */
  readonly orderRef: Hex;
  readonly token: Address;
  readonly receivers: readonly Address[];
  /** Base units of `token`, one per receiver. */
  readonly amounts: readonly bigint[];
  /** The receiver that takes any excess and the rounding dust of a shortfall. */
  readonly merchantIndex: bigint;
}

/** `token` of a plan paid in the network's native coin. */
export const NATIVE_COIN: Address = zeroAddress;

/** The ABI type of `ForwarderFactory.Plan`; its hash (of `abi.encode(plan)`) is the CREATE2 salt. */
export const PLAN_ABI_PARAMETER = {
  type: 'tuple',
  components: [
    { name: 'orderRef', type: 'bytes32' },
    { name: 'token', type: 'address' },
    { name: 'receivers', type: 'address[]' },
    { name: 'amounts', type: 'uint256[]' },
    { name: 'merchantIndex', type: 'uint256' },
  ],
} as const;

const UINT256_MAX = (1n << 256n) - 1n;

/** The order reference committed to by the plan: keccak256 of the UTF-8 payment order number. */
export function orderRef(paymentOrderNo: string): Hex {
  return keccak256(stringToBytes(paymentOrderNo));
}

/** The domain's plan in the contract's terms (addresses checksummed, native coin as address(0)). */
export function forwarderPlan(plan: Pick<SettlementPlan, 'paymentOrderNo' | 'token' | 'receivers' | 'merchantIndex'>): ForwarderPlan {
  return checkedPlan({
    orderRef: orderRef(plan.paymentOrderNo),
    token: plan.token === null ? NATIVE_COIN : toAddress(plan.token),
    receivers: plan.receivers.map((r) => toAddress(r.address)),
    amounts: plan.receivers.map((r) => r.amount),
    merchantIndex: BigInt(plan.merchantIndex),
  });
}

/**
 * Throws on a plan the factory would refuse to distribute (InvalidPlan) or could not pay: such a
 * plan's address would strand every payment sent to it, so it must never be handed out. A bug in
 * the caller, hence an exception rather than a result.
 */
export function checkedPlan(plan: ForwarderPlan): ForwarderPlan {
  const n = plan.receivers.length;
  if (n === 0 || plan.amounts.length !== n) throw new RangeError('a plan needs one amount per receiver, and at least one receiver');
  if (plan.merchantIndex < 0n || plan.merchantIndex >= BigInt(n)) throw new RangeError(`merchantIndex ${plan.merchantIndex} is not a receiver index`);
  if (plan.receivers.some((r) => !isAddress(r, { strict: false }) || r.toLowerCase() === zeroAddress)) throw new RangeError('receivers must be non-zero EVM addresses');
  if (!isAddress(plan.token, { strict: false })) throw new RangeError('token must be an EVM address');
  if (plan.amounts.some((a) => a < 0n || a > UINT256_MAX)) throw new RangeError('amounts must be uint256');
  // Beyond 2^128 the contract's pro rata product could overflow and revert (see the contract).
  if (plan.amounts.reduce((s, a) => s + a, 0n) >= MAX_PLAN_TOTAL) throw new RangeError('plan total must be below 2^128 base units');
  if (!/^0x[0-9a-fA-F]{64}$/.test(plan.orderRef)) throw new RangeError('orderRef must be 32 bytes');
  return plan;
}

/** `abi.encode(plan)` as the factory computes it. */
export function encodePlan(plan: ForwarderPlan): Hex {
  return encodeAbiParameters([PLAN_ABI_PARAMETER], [{ ...plan, receivers: [...plan.receivers], amounts: [...plan.amounts] }]);
}

/** The CREATE2 salt of the plan's forwarder. */
export function planSalt(plan: ForwarderPlan): Hex {
  return keccak256(encodePlan(plan));
}

/**
 * The forwarders' init code for `implementation` (46 bytes), as the factory deploys it: it
 * DELEGATECALLs the implementation (which moves the balance to the factory), reverts with its
 * reason on failure, and otherwise leaves one zero byte of code (see ForwarderFactory.sol).
 */
export function forwarderInitCode(implementation: Address): Hex {
  const impl = getAddress(implementation).toLowerCase() as Hex; // validated; hex in one case
  return concat(['0x3d3d3d3d73', impl, '0x5af46028573d600060003e3d6000fd5b60016000f3']);
}

/** What the factory reports as `initCodeHash()`. */
export function forwarderInitCodeHash(implementation: Address): Hex {
  return keccak256(forwarderInitCode(implementation));
}

/** The forwarder's code: the implementation address (configuration) or the factory's init code hash. */
export type ForwarderCode = { readonly implementation: Address } | { readonly initCodeHash: Hex };

/**
 * The order's deposit address: keccak256(0xff ++ factory ++ salt ++ keccak256(init code))[12:].
 * Valid before the forwarder exists, which it only does once the plan is distributed.
 */
export function forwarderAddress(factory: Address, code: ForwarderCode, plan: ForwarderPlan): Address {
  const bytecodeHash = 'initCodeHash' in code ? code.initCodeHash : forwarderInitCodeHash(code.implementation);
  return getContractAddress({ opcode: 'CREATE2', from: getAddress(factory), salt: planSalt(plan), bytecodeHash });
}

function toAddress(address: string): Address {
  if (!isAddress(address, { strict: false })) throw new RangeError(`${address} is not an EVM address`);
  return getAddress(address);
}
