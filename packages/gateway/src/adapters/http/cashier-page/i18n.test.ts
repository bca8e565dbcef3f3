import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CATALOGUES, formatDecimal, LANGUAGES, pickLanguage, translator } from './i18n.js';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('cashier page strings', () => {
  it('has every key in both languages, non-empty, with the same placeholders', () => {
    const [first, ...others] = LANGUAGES.map((l) => CATALOGUES[l]);
    const keys = Object.keys(first!).sort();
    for (const catalogue of others) {
      expect(Object.keys(catalogue).sort()).toEqual(keys);
      for (const key of keys) {
        const text = (catalogue as Record<string, string>)[key]!;
        expect(text.trim().length, key).toBeGreaterThan(0);
        expect(placeholders(text), key).toEqual(placeholders((first as Record<string, string>)[key]!));
      }
    }
  });

  it('uses in the page only keys the catalogues have', () => {
    const source = readFileSync(new URL('./render.ts', import.meta.url), 'utf8') + readFileSync(new URL('./routes.ts', import.meta.url), 'utf8');
    const used = new Set([...source.matchAll(/\bt\('(\w+)'/g), ...source.matchAll(/\)\('(\w+)'/g)].map((m) => m[1]!));
    used.add('state_CHOOSE').add('state_AWAITING').add('state_PAID').add('state_EXPIRED').add('state_CLOSED');
    expect(used.size).toBeGreaterThan(20);
    for (const key of used) for (const lang of LANGUAGES) expect(CATALOGUES[lang], `${lang} ${key}`).toHaveProperty(key);
  });

  it('fills placeholders and keeps unknown ones visible', () => {
    expect(translator('en')('pay_heading', { amount: '10.5', currency: 'USDT' })).toBe('Send exactly 10.5 USDT');
    expect(translator('zh-CN')('pay_heading', { amount: '10.5', currency: 'USDT' })).toBe('请准确转账 10.5 USDT');
    expect(translator('en')('pay_heading', { amount: '1' })).toBe('Send exactly 1 {currency}');
  });

  it.each([
    [undefined, undefined, 'en'],
    [undefined, 'zh-CN,zh;q=0.9,en;q=0.8', 'zh-CN'],
    [undefined, 'en-US,en;q=0.9,zh-CN;q=0.8', 'en'],
    [undefined, 'fr-FR, zh;q=0.5', 'zh-CN'],
    [undefined, 'zh-Hans-CN', 'zh-CN'],
    [undefined, 'zh-TW', 'en'],
    [undefined, 'en;q=0.1, zh-CN;q=0.9', 'zh-CN'],
    [undefined, 'zh-CN;q=0, en', 'en'],
    [undefined, ';;;,,,q=,zh-CN;q=abc', 'en'],
    ['en', 'zh-CN', 'en'],
    ['zh-CN', 'en', 'zh-CN'],
    [['zh-CN', 'en'], 'en', 'en'],
    ['de', 'zh-CN', 'zh-CN'],
  ])('picks the language from ?lang=%j and Accept-Language %j: %s', (query, header, lang) => {
    expect(pickLanguage(query, header)).toBe(lang);
  });

  it('formats amounts exactly, grouped for the locale', () => {
    expect(formatDecimal('1234567.123456789012345678', 'en')).toBe('1,234,567.123456789012345678');
    expect(formatDecimal('1234567.5', 'zh-CN')).toBe('1,234,567.5');
    expect(formatDecimal('10', 'en')).toBe('10');
    expect(formatDecimal('not a number', 'en')).toBe('not a number');
  });
});
