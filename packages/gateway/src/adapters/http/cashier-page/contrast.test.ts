// The stylesheet's colours a payer must tell apart: WCAG 2.1 contrast against the page's white.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const css = readFileSync(new URL('../../../../web/cashier.css', import.meta.url), 'utf8');

/** WCAG relative luminance of #rrggbb. */
function luminance(hex: string): number {
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(hex.slice(1 + i, 3 + i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
const contrast = (a: string, b: string) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
};

describe('cashier stylesheet contrast', () => {
  it('draws the option buttons with a border of at least 3:1 against white (WCAG 1.4.11, non-text contrast)', () => {
    const rule = /\.option\{[^}]*border-color:(#[0-9a-fA-F]{6})/.exec(css);
    expect(rule).not.toBeNull();
    expect(contrast(rule![1]!, '#ffffff')).toBeGreaterThanOrEqual(3);
  });
});
