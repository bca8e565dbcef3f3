// Lint rules, including the architecture's dependency rule:
// domain imports only domain and protocol; app imports domain and its ports;
// adapters and jobs import app and domain; only cli/ (the composition root) imports everything.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, forbidden, message) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((group) => ({ group: [group], message })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'test-output/**', '.sparkpay/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.name='parseFloat']", message: 'Money is bigint base units; no floats.' },
      ],
    },
  },
  layer(['packages/gateway/src/domain/**/*.ts'], ['**/app/**', '**/adapters/**', '**/jobs/**', '**/cli/**', 'node:*', 'fastify', 'kysely', 'pg', 'better-sqlite3', 'pino', 'prom-client'], 'domain is pure: it imports only domain and @sparkpay/protocol'),
  layer(['packages/gateway/src/app/**/*.ts'], ['**/adapters/**', '**/jobs/**', '**/cli/**', 'fastify', 'kysely', 'pg', 'better-sqlite3', 'prom-client'], 'app imports domain and its own ports only'),
  layer(['packages/gateway/src/adapters/**/*.ts', 'packages/gateway/src/jobs/**/*.ts'], ['**/cli/**'], 'only the composition root (cli/) wires adapters together'),
  layer(['packages/protocol/src/**/*.ts'], ['@sparkpay/*', 'fastify', 'kysely', 'pg', 'pino'], 'protocol has no runtime dependencies'),
);
