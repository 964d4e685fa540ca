import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('npm scripts', () => {
  it('every command in `pullq --help` is an npm script of the same name that runs it', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    // The usage lists each command at the start of an indented line: "  enqueue <ids-file|-> ...".
    const commands = [...help.stdout.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!);
    expect(commands).toContain('dashboard');
    expect(commands.length).toBeGreaterThanOrEqual(10);
    for (const command of commands) {
      expect(scripts[command], `npm run ${command}`).toBe(`node dist/src/cli/main.js ${command}`);
    }
  });
});
