import { describe, expect, it } from 'vitest';
import { mainnetDeployment, type Deployment } from '../domain/catalogue.js';
import { deploymentDecimals } from './order-view.js';

describe('deploymentDecimals', () => {
  const bscUsdc = '0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d';
  it("reads a token's decimals by network and contract from the configuration, whatever the case of the address", () => {
    const decimals = deploymentDecimals(mainnetDeployment());
    expect(decimals('3', bscUsdc)).toBe(18);
    expect(decimals('3', bscUsdc.toUpperCase().replace('0X', '0x'))).toBe(18);
    expect(decimals('2', '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48')).toBe(6);
    // Another network's contract, or an unknown one: not known.
    expect(decimals('4', bscUsdc)).toBeNull();
    expect(decimals('3', `0x${'12'.repeat(20)}`)).toBeNull();
  });
  it('falls back to the mainnet catalogue for a token taken off the configuration after transfers in it were recorded', () => {
    const base = mainnetDeployment();
    const withoutUsdc: Deployment = { networks: base.networks.map((n) => (n.id === '3' ? { ...n, currencies: n.currencies.filter((c) => c.code !== 'USDC') } : n)) };
    expect(deploymentDecimals(withoutUsdc)('3', bscUsdc)).toBe(18);
  });
});
