// The README's command list ("Running it") and `sparkpay help` name the same commands with the same
// options: an operator reads one or the other, and an option only one of them names is one the
// other reader never learns of (`devnet pay --reorg` was in the README only).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inProcess } from './cli-run.js';

const README = resolve(import.meta.dirname, '../../../README.md');

/**
 * Command words → the options (`--x`) its text names. `entries`: a command's text, its first
 * words (up to the first argument, option or run of spaces before a description) the command.
 */
function byCommand(entries: string[]): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const entry of entries) {
    const words: string[] = [];
    for (const w of entry.trim().split(/\s{2,}/)[0]!.split(' ')) {
      if (!/^[a-z][a-z-]*$/.test(w)) break;
      words.push(w);
    }
    map.set(words.join(' '), new Set(entry.match(/--[a-z][a-z-]*/g) ?? []));
  }
  return map;
}

/** The README's "Running it" block: one entry per `sparkpay` line with its continuation lines, comments cut. */
function readmeCommands(): Map<string, Set<string>> {
  const text = readFileSync(README, 'utf8');
  const block = /## Running it\n+```\n([\s\S]*?)```/.exec(text)?.[1];
  if (!block) throw new Error('README: no command block under "## Running it"');
  const entries: string[] = [];
  for (const line of block.split('\n')) {
    const code = line.replace(/\s#\s.*$/, '');
    if (code.startsWith('sparkpay ')) entries.push(code.slice('sparkpay '.length));
    else if (/^\s+\S/.test(code) && entries.length > 0) entries[entries.length - 1] += ` ${code}`;
  }
  return byCommand(entries.filter((e) => !e.startsWith('--version')));
}

/** `sparkpay help`: an entry starts at a line indented by exactly two spaces. */
function helpCommands(usage: string): Map<string, Set<string>> {
  const entries: string[] = [];
  for (const line of usage.split('\n').slice(1)) {
    if (/^ {2}[a-z]/.test(line)) entries.push(line);
    else if (/^\s+\S/.test(line) && entries.length > 0) entries[entries.length - 1] += ` ${line}`;
  }
  return byCommand(entries);
}

describe('the README command list and sparkpay help', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sparkpay-readme-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('name the same commands, each with the same options', async () => {
    const help = await inProcess(['help'], { SPARKPAY_DATA_DIR: dir }, dir);
    expect(help.code).toBe(0);
    const fromHelp = helpCommands(help.stdout);
    const fromReadme = readmeCommands();
    expect([...fromReadme.keys()].sort()).toEqual([...fromHelp.keys()].sort());
    for (const [command, options] of fromReadme) {
      expect({ command, options: [...options].sort() }).toEqual({ command, options: [...(fromHelp.get(command) ?? [])].sort() });
    }
  });
});
