import { describe, expect, it } from 'vitest';
import { isValidEvmAddress } from './address.js';
import { checkDeployment, currencyOn, FIAT_CURRENCIES, mainnetDeployment, MAINNET_CURRENCIES, NETWORK_IDS, NETWORKS, networksCarrying, parseNetworkId } from './catalogue.js';

describe('catalogue', () => {
  it('parses the network enum from a string or a number', () => {
    expect(parseNetworkId('2')).toBe('2');
    expect(parseNetworkId(5)).toBe('5');
    for (const bad of ['1', '6', 6, '02', ' 2', 2.5, '2.0', null, undefined, {}, '']) expect(parseNetworkId(bad)).toBeNull();
  });
  it('describes the four networks of §5', () => {
    expect(NETWORK_IDS.map((id) => [NETWORKS[id].name, NETWORKS[id].nativeCoin, NETWORKS[id].mainnetChainId])).toEqual([
      ['Ethereum', 'ETH', 1],
      ['BNB Smart Chain', 'BNB', 56],
      ['Polygon', 'POL', 137],
      ['IRISnet', null, 6688],
    ]);
    expect(FIAT_CURRENCIES.USD.precision).toBe(2);
    expect(FIAT_CURRENCIES.HKD.precision).toBe(2);
  });
  it('has valid contract addresses (mixed case ones pass EIP-55) and precision <= decimals', () => {
    for (const id of NETWORK_IDS) {
      for (const c of MAINNET_CURRENCIES[id]) {
        if (c.contract !== null) expect(isValidEvmAddress(c.contract)).toBe(true);
        expect(c.precision).toBeLessThanOrEqual(c.decimals);
      }
    }
  });
  it('builds the mainnet deployment with the §6 default fees', () => {
    const d = mainnetDeployment();
    expect(d.networks.map((n) => [n.id, n.chainId, n.feeRate, n.minFeeUsd])).toEqual([
      ['2', 1, '0.005', '1.00'],
      ['3', 56, '0.005', '0.10'],
      ['4', 137, '0.005', '0.10'],
      ['5', 6688, '0.005', '0.10'],
    ]);
    expect(checkDeployment(d)).toEqual([]);
    expect(networksCarrying(d, 'USDT').map((n) => n.id)).toEqual(['2', '3', '4']);
    const bsc = d.networks[1];
    expect(bsc && currencyOn(bsc, 'USDT')).toMatchObject({ decimals: 18, precision: 6 });
  });
  it('reports configuration problems', () => {
    const [eth] = mainnetDeployment().networks;
    if (!eth) throw new Error('no network');
    const broken = {
      networks: [
        { ...eth, feeRate: '1', minFeeUsd: 'one', currencies: [...eth.currencies, { code: 'ETH', contract: null, decimals: 6, precision: 8 }, { code: 'USD', contract: null, decimals: 2, precision: 2 }] },
        { ...eth, chainId: 0 },
      ],
    };
    const problems = checkDeployment(broken);
    expect(problems).toEqual([
      'network 2: fee rate must be a decimal in [0, 1)',
      'network 2: minimum fee must be a positive decimal (USD)',
      'network 2: currency ETH listed twice',
      'network 2: currency ETH needs 0 <= precision <= decimals <= 36',
      'network 2: USD is a fiat code',
      'network 2: listed twice',
      'network 2: invalid chain id',
    ]);
  });
  it('refuses a minimum fee of zero: every settlement pays the fee address a positive amount', () => {
    const [eth] = mainnetDeployment().networks;
    if (!eth) throw new Error('no network');
    for (const minFeeUsd of ['0', '0.00', '-1']) expect(checkDeployment({ networks: [{ ...eth, minFeeUsd }] })).toEqual(['network 2: minimum fee must be a positive decimal (USD)']);
    expect(checkDeployment({ networks: [{ ...eth, minFeeUsd: '0.000001', feeRate: '0' }] })).toEqual([]);
  });
});
