import { describe, expect, it } from 'vitest';
import { withNotifyTime } from './deliver-notifications.js';

describe('withNotifyTime', () => {
  it('appends notify_time as the last member, leaving the stored bytes as they are', () => {
    const stored = JSON.stringify({ payment_order_no: 'P1', amount: '1.50', note: 'ü "q" }', notify_id: 'N1', notify_type: 'ORDER_PAID' });
    const sent = withNotifyTime(stored, 1_795_608_000);
    expect(sent).toBe(`${stored.slice(0, -1)},"notify_time":1795608000}`);
    expect(JSON.parse(sent)).toEqual({ ...(JSON.parse(stored) as object), notify_time: 1_795_608_000 });
    expect(Object.keys(JSON.parse(sent) as object).at(-1)).toBe('notify_time');
  });

  it('handles an empty object and refuses anything that is not an object', () => {
    expect(withNotifyTime('{}', 5)).toBe('{"notify_time":5}');
    expect(() => withNotifyTime('[1]', 5)).toThrow(/not a JSON object/);
  });
});
