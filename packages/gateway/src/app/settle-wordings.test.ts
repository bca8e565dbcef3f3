// What the settler recognises in a node's refusal of a broadcast: fees too low (re-sign with
// higher ones) or a gas limit the node will never take (give the transaction back, estimate anew).
// Wordings as the nodes print them.
import { describe, expect, it } from 'vitest';
import { FEES_REFUSED, GAS_LIMIT_REFUSED } from './settle.js';

describe('node refusals', () => {
  it.each([
    'exceeds block gas limit', // geth
    'intrinsic gas too low', // geth
    'intrinsic gas too high -- tx.gas_limit > env.block.gas_limit', // anvil, after the block gas limit dropped
    'gas limit reached', // Erigon
    'GasLimitExceeded', // Nethermind
  ])('takes %j for a refused gas limit, not for fees', (error) => {
    expect(GAS_LIMIT_REFUSED.test(error)).toBe(true);
    expect(FEES_REFUSED.test(error)).toBe(false);
  });

  it.each(['replacement transaction underpriced', 'transaction underpriced', 'max fee per gas less than block base fee', 'FeeTooLow'])('takes %j for fees too low, not for the gas limit', (error) => {
    expect(FEES_REFUSED.test(error)).toBe(true);
    expect(GAS_LIMIT_REFUSED.test(error)).toBe(false);
  });

  it.each(['insufficient funds for gas * price + value', 'nonce too low', '429 Too Many Requests'])('takes %j for neither', (error) => {
    expect(FEES_REFUSED.test(error)).toBe(false);
    expect(GAS_LIMIT_REFUSED.test(error)).toBe(false);
  });
});
