import { describe, expect, it } from 'vitest';
import { endpointLabel, secretScrubber, urlSecrets } from './endpoint-secrets.js';

const INFURA = 'https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef';
const PRIVATE = 'http://apiuser:s3cret%2Fpw@10.0.0.7:8545/rpc?key=QUERYSECRET99';

describe('endpointLabel', () => {
  it('keeps the scheme, host and port, and marks what it leaves out', () => {
    expect(endpointLabel(INFURA)).toBe('https://mainnet.infura.io/…');
    expect(endpointLabel(PRIVATE)).toBe('http://10.0.0.7:8545/…');
    expect(endpointLabel('http://127.0.0.1:8545')).toBe('http://127.0.0.1:8545');
    expect(endpointLabel('http://127.0.0.1:8545/')).toBe('http://127.0.0.1:8545');
    expect(endpointLabel('not a url')).toBe('(an RPC endpoint)');
  });
});

describe('secretScrubber', () => {
  const scrub = secretScrubber([INFURA, PRIVATE, 'http://127.0.0.1:8545']);

  it('takes the user-info, password (as written and decoded), long path segments and query values for secrets', () => {
    expect(urlSecrets(PRIVATE)).toEqual(expect.arrayContaining(['apiuser:s3cret%2Fpw@', 's3cret%2Fpw', 's3cret/pw', 'QUERYSECRET99']));
    expect(urlSecrets(PRIVATE)).not.toContain('rpc');
    expect(urlSecrets(INFURA)).toContain('0123456789abcdef0123456789abcdef');
  });

  it('replaces a whole configured URL by its label and any secret part elsewhere by …, in raw and JSON-escaped text', () => {
    const line = JSON.stringify({
      msg: 'worker tick failed',
      err: { message: `HTTP request failed.\nURL: ${INFURA}\nRequest body: {}`, stack: `at ${PRIVATE}` },
      note: 'the key 0123456789abcdef0123456789abcdef and the password s3cret/pw and QUERYSECRET99',
    });
    const out = scrub(line);
    for (const secret of ['0123456789abcdef0123456789abcdef', 's3cret', 'QUERYSECRET99', 'apiuser:']) expect(out).not.toContain(secret);
    expect(out).toContain('URL: https://mainnet.infura.io/…');
    expect(out).toContain('at http://10.0.0.7:8545/…');
    expect(JSON.parse(out)).toMatchObject({ msg: 'worker tick failed' });
  });

  it('leaves lines without secrets alone, and endpoints with nothing secret as they are', () => {
    const line = '{"msg":"switched RPC endpoint","to":"http://127.0.0.1:8545"}\n';
    expect(scrub(line)).toBe(line);
    expect(secretScrubber([])(line)).toBe(line);
  });
});
