// The committed artifacts are what the sources compile to: rebuilt in memory with the pinned
// solc and compared byte for byte (a stale artifact would deploy code nobody reviewed).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ARTIFACT_DIR, buildContracts, CONTRACTS, differingFiles, SOLC_VERSION, TS_MODULE } from './build.mjs';

const gatewayFile = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('contract artifacts', () => {
  const files = buildContracts();

  it('match a fresh build with the bundled solc byte for byte', () => {
    expect([...files.keys()].sort()).toEqual([...CONTRACTS.map((c) => `${ARTIFACT_DIR}/${c}.json`), TS_MODULE].sort());
    expect(differingFiles(files)).toEqual([]);
    for (const [path, text] of files) expect(gatewayFile(path) === text, path).toBe(true);
  });

  it('come from the solc version the package pins exactly', () => {
    const pkg = JSON.parse(gatewayFile('package.json')) as { devDependencies: Record<string, string> };
    expect(SOLC_VERSION.startsWith(`${pkg.devDependencies.solc}+`)).toBe(true);
    for (const name of CONTRACTS) {
      const artifact = JSON.parse(gatewayFile(`${ARTIFACT_DIR}/${name}.json`)) as { compiler: string; abi: unknown[]; bytecode: string; deployedBytecode: string };
      expect(artifact.compiler).toBe(SOLC_VERSION);
      expect(artifact.abi.length).toBeGreaterThan(0);
      expect(artifact.bytecode).toMatch(/^0x([0-9a-f]{2})+$/);
      expect(artifact.deployedBytecode).toMatch(/^0x([0-9a-f]{2})+$/);
    }
  });

  it('contain no PUSH0 (evmVersion paris), so they run on chains that have not adopted Shanghai', () => {
    for (const name of CONTRACTS) {
      const { deployedBytecode } = JSON.parse(gatewayFile(`${ARTIFACT_DIR}/${name}.json`)) as { deployedBytecode: string };
      expect(runtimeOpcodes(deployedBytecode).includes(0x5f), name).toBe(false);
    }
  });
});

/** The opcodes of runtime code, skipping PUSH data and the trailing CBOR metadata (its length is in the last 2 bytes). */
function runtimeOpcodes(hex: string): number[] {
  const code = Buffer.from(hex.slice(2), 'hex');
  const end = code.length - 2 - code.readUInt16BE(code.length - 2);
  const ops: number[] = [];
  for (let i = 0; i < end; i += 1) {
    const op = code[i] ?? 0;
    ops.push(op);
    if (op >= 0x60 && op <= 0x7f) i += op - 0x5f;
  }
  return ops;
}
