// ERC-20 stand-ins for the devnet and the tests: the §5 currencies with their decimals (6 for
// Ethereum USDT, 18 for BNB Smart Chain USDT), mintable by the deployer.
import { mnemonicToAccount, type HDAccount } from 'viem/accounts';
import type { Address, Hex } from 'viem';
import { confirmed, deployedAddress, type EvmClients } from '../chain/evm/clients.js';
import { noReturnTokenAbi, noReturnTokenBytecode, testTokenAbi, testTokenBytecode } from '../chain/evm/contract-artifacts.js';
import { ANVIL_DEFAULT_MNEMONIC } from './anvil.js';

export interface TestTokenSpec {
  readonly name: string;
  readonly symbol: string;
  readonly decimals: number;
  /** A token whose transfer returns nothing, like mainnet USDT (contracts/NoReturnToken.sol). */
  readonly noReturn?: boolean;
}

/** Deploys a token; the wallet's account becomes its owner, the only one allowed to mint. */
export async function deployTestToken(clients: EvmClients, spec: TestTokenSpec): Promise<Address> {
  const args = [spec.name, spec.symbol, spec.decimals] as const;
  const hash = spec.noReturn
    ? await clients.wallet.deployContract({ abi: noReturnTokenAbi, bytecode: noReturnTokenBytecode, args })
    : await clients.wallet.deployContract({ abi: testTokenAbi, bytecode: testTokenBytecode, args });
  return (await deployedAddress(clients, hash)).address;
}

/** Mints `amount` base units to `to` and waits for the block. Both token kinds share `mint`. */
export async function mintTestToken(clients: EvmClients, token: Address, to: Address, amount: bigint): Promise<Hex> {
  const hash = await clients.wallet.writeContract({ address: token, abi: testTokenAbi, functionName: 'mint', args: [to, amount] });
  await confirmed(clients, hash);
  return hash;
}

/** Account `index` of a mnemonic (BIP-44 m/44'/60'/0'/0/index), as anvil derives its funded accounts. */
export function devAccount(index: number, mnemonic: string = ANVIL_DEFAULT_MNEMONIC): HDAccount {
  return mnemonicToAccount(mnemonic, { addressIndex: index });
}
