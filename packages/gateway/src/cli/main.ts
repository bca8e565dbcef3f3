#!/usr/bin/env node
// The `sparkpay` command (§16).
import { secretScrubber } from '../domain/endpoint-secrets.js';
import { runCli } from './commands.js';
import { loadConfig } from './config.js';
import { reasonLine } from './output.js';

/** The configured RPC endpoints' secrets out of a message (libraries quote whole URLs in theirs). */
function scrubbed(message: string): string {
  try {
    return secretScrubber(loadConfig('production').deployment.networks.flatMap((n) => n.chain.rpcUrls))(message);
  } catch {
    return message;
  }
}

runCli(process.argv.slice(2)).then(
  (code) => {
    if (code !== null) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sparkpay: ${reasonLine(scrubbed(err instanceof Error ? err.message : String(err)))}\n`);
    process.exitCode = 1;
  },
);
