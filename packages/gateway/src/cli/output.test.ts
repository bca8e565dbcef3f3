import { describe, expect, it } from 'vitest';
import { args, UsageError } from './output.js';

describe('args', () => {
  const spec = { name: { type: 'string' }, wallet: { type: 'string', multiple: true }, activate: { type: 'boolean' } } as const;

  it('refuses a value option given twice, which would silently keep the last', () => {
    for (const argv of [['--name', 'A', '--name', 'B'], ['--name=A', '--name', 'A'], ['--name', 'A', '--json', '--name=B']]) {
      expect(() => args(argv, spec), argv.join(' ')).toThrow(UsageError);
      expect(() => args(argv, spec)).toThrow('--name is given more than once; give it once');
    }
  });

  it('takes repeatable options and repeated flags as before', () => {
    const { values, out } = args(['--wallet', '2=0xA', '--wallet', '4=0xB', '--activate', '--activate', '--json', '--json', '--name', 'Shop'], spec);
    expect(values).toMatchObject({ wallet: ['2=0xA', '4=0xB'], activate: true, name: 'Shop' });
    expect(out.json).toBe(true);
  });
});
