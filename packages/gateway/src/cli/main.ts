#!/usr/bin/env node
// The `sparkpay` command (§16).
import { runCli } from './commands.js';
import { reasonLine } from './output.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    if (code !== null) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sparkpay: ${reasonLine(err instanceof Error ? err.message : String(err))}\n`);
    process.exitCode = 1;
  },
);
