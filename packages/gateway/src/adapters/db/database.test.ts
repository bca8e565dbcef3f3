import { describe, expect, it } from 'vitest';
import { openDatabase } from './database.js';

describe('openDatabase', () => {
  it('names a database it cannot reach by its description, never its password, and says it could not be used', async () => {
    // Nothing listens on port 1.
    const err = await openDatabase({ url: 'postgres://shop:s3cretpw@127.0.0.1:1/payments' }).then(
      () => new Error('opened'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^cannot use the database postgres:127\.0\.0\.1:1\/payments: connect ECONNREFUSED/);
    expect(err.message).not.toContain('s3cretpw');
    expect(err.message).not.toContain('migration');
  });
});
