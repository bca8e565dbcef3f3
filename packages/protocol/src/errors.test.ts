import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, ErrorCodes, SparkPayError, errorDef, isErrorCode, type ErrorCode } from './index.js';

const SEED_NAME = 'sparkpay-error-codes.txt';

/**
 * The seed lives in the `shared` folder beside the repository folder. A checkout at another depth
 * (a worktree, a CI workspace) still finds it by walking up; a missing file fails loudly.
 */
function seedPath(): string {
  const tried: string[] = [];
  const fromEnv = process.env.SPARKPAY_ERROR_SEED;
  if (fromEnv) tried.push(fromEnv);
  tried.push(fileURLToPath(new URL(`../../../../shared/seeds/${SEED_NAME}`, import.meta.url)));
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    tried.push(join(d, 'shared', 'seeds', SEED_NAME));
    if (dirname(d) === d) break;
  }
  const found = tried.find((p) => existsSync(p));
  if (!found) throw new Error(`error-code seed ${SEED_NAME} not found; looked at:\n  ${tried.join('\n  ')}`);
  return found;
}

interface SeedRow {
  code: number;
  reason: string;
  /** Description and solution, which the published table runs together with no separator. */
  rest: string;
}

const REASONS = ['Invalid request parameters', 'Invalid Parameter', 'System exception'];
const norm = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Rows look like `40000numberInvalid request parametersSignature verification…Ensure that…`. */
function parseSeed(text: string): SeedRow[] {
  if (!text.includes('Error CodeTypeError ReasonError DescriptionSolution')) {
    throw new Error('seed file does not contain the error table header; has its format changed?');
  }
  const rows: SeedRow[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(\d{5})\s*number(.*)$/.exec(line);
    if (!m) continue;
    const after = m[2] ?? '';
    const reason = REASONS.find((r) => after.startsWith(r));
    if (!reason) throw new Error(`seed row ${m[1]} has an unknown error reason: ${after.slice(0, 40)}`);
    rows.push({ code: Number(m[1]), reason, rest: after.slice(reason.length) });
  }
  if (rows.length === 0) throw new Error('no error rows found in the seed file');
  return rows;
}

const seed = parseSeed(readFileSync(seedPath(), 'utf8'));

describe('error catalogue against the published seed table', () => {
  it('has every seed code exactly once and nothing else', () => {
    const seedCodes = seed.map((r) => r.code);
    const ours = ERROR_CATALOGUE.map((d) => d.code);
    expect(new Set(seedCodes).size, 'duplicate code in the seed').toBe(seedCodes.length);
    expect(ours.filter((c, i) => ours.indexOf(c) !== i), 'duplicate codes in the catalogue').toEqual([]);
    expect(seedCodes.filter((c) => !ours.includes(c)), 'seed codes missing from the catalogue').toEqual([]);
    expect(ours.filter((c) => !seedCodes.includes(c)), 'catalogue codes not in the seed').toEqual([]);
  });

  it.each(seed.map((r) => [r.code, r] as const))('keeps the published meaning of %i', (code, row) => {
    const def = errorDef(code);
    expect(def.reason).toBe(row.reason);
    // The description is a prefix of the run-together text and the solution is exactly the rest,
    // so a split in the wrong place or a reworded message both fail.
    expect(norm(row.rest).startsWith(norm(def.message)), 'message is the seed description').toBe(true);
    expect(norm(`${def.message}${def.solution}`)).toBe(norm(row.rest));
    expect(def.message).not.toBe('');
    expect(def.message).toBe(def.message.trim());
    // The table glues description and solution together ("…failedThe public key…"), so the
    // split belongs exactly at that glued sentence start: the solution opens with a capitalised
    // word, and no other glued boundary is left inside the description.
    if (def.solution !== '') expect(def.solution).toMatch(/^[A-Z][a-z ]/);
    expect(def.message).not.toMatch(/[a-z.][A-Z][a-z]/);
  });

  it('has no solution for exactly the rows the seed leaves without one', () => {
    const empty = ERROR_CATALOGUE.filter((d) => d.solution === '').map((d) => d.code);
    expect(empty).toEqual([41031, 41032, 41033]);
  });
});

describe('error codes and HTTP statuses', () => {
  it('names every catalogue code once, in UPPER_SNAKE_CASE', () => {
    const entries = Object.entries(ErrorCodes);
    expect(entries.map(([, c]) => c).sort()).toEqual(ERROR_CATALOGUE.map((d) => d.code).sort());
    for (const [name] of entries) expect(name).toMatch(/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/);
    expect(ErrorCodes.SIGNATURE_INVALID).toBe(40000);
    expect(ErrorCodes.AES_KEY_DECRYPT_FAILED).toBe(40001);
    expect(ErrorCodes.INVALID_APP_ID).toBe(40002);
    expect(ErrorCodes.MISSING_PARAMETER).toBe(40003);
    expect(ErrorCodes.INTERNAL_ERROR).toBe(50000);
  });

  it('maps codes to the HTTP statuses of PROTOCOL §3, 400 by default', () => {
    const special: Record<number, number> = {
      40000: 401, 40002: 401, 40013: 401, 43005: 404, 43006: 409, 43007: 409, 40011: 429, 50000: 500,
    };
    for (const def of ERROR_CATALOGUE) expect([def.code, def.httpStatus]).toEqual([def.code, special[def.code] ?? 400]);
    expect(errorDef(ErrorCodes.PARAMETER_ERROR).httpStatus).toBe(400);
  });

  it('throws for an unknown code and recognises known ones', () => {
    expect(() => errorDef(12345)).toThrow(/unknown SparkPay error code 12345/);
    expect(isErrorCode(41013)).toBe(true);
    expect(isErrorCode(41004)).toBe(false);
    expect(isErrorCode(0)).toBe(false);
  });

  it('builds a SparkPayError with the catalogue message unless one is given', () => {
    const e = new SparkPayError(ErrorCodes.ORDER_NOT_FOUND);
    expect(e).toBeInstanceOf(Error);
    expect([e.code, e.httpStatus, e.message, e.name]).toEqual([43005, 404, 'Payment order does not exist', 'SparkPayError']);
    const code: ErrorCode = ErrorCodes.SIGNATURE_INVALID;
    const custom = new SparkPayError(code, 'timestamp is outside the allowed window');
    expect([custom.code, custom.httpStatus, custom.message]).toEqual([40000, 401, 'timestamp is outside the allowed window']);
  });

  it('cannot be modified at run time', () => {
    expect(Object.isFrozen(ERROR_CATALOGUE)).toBe(true);
    expect(Object.isFrozen(ERROR_CATALOGUE[0])).toBe(true);
    expect(Object.isFrozen(ErrorCodes)).toBe(true);
  });
});
