/**
 * The README's runnable code blocks and their printed outputs, kept from drifting.
 *
 *     npx tsx scripts/readme.ts --write    # run every block as written; write its outputs into README.md
 *     npx tsx scripts/readme.ts --check    # run every block with small sizes; check each output line's form
 *
 * A block is runnable when the line before its fence is `<!-- readme: run -->` (options:
 * `needs=PATH` skips it where PATH, from the repository root, is absent; `as=A=B` runs it with
 * the text A replaced by B). In a `sh` block, every line that does not start with `#` is a
 * command (a line ending in `\` goes on), run by bash from a scratch folder, and the `# `
 * lines after it are its standard output. In a `ts` block, `from 'tsbert'` is this
 * checkout's sources, and each `console.log(…); // OUTPUT` line's comment is what it printed.
 * `--check` runs the blocks at small sizes (two steps, 16 pairs a batch, a small corpus in
 * place of WikiText-2) and fails when a block fails or prints lines of another form than the
 * README's (numbers may differ); `npm test` runs it (`__test__/readme.spec.ts`). `--write`
 * needs `../shared/data/wikitext-2` and a build (`npm run build`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const README = join(ROOT, 'README.md');
const MARKER = /^<!-- readme: run(.*)-->$/;

/** A runnable block: where it is in the README and how to run it. */
interface Block {
  lang: 'sh' | 'ts';
  /** Index of the fence's first content line and of the closing fence. */
  from: number;
  to: number;
  needs?: string;
  replace: [string, string][];
}

/** The runnable blocks of the README's lines. */
export function runnableBlocks(lines: string[]): Block[] {
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i]);
    if (!marker) continue;
    const fence = /^```(sh|ts)$/.exec(lines[i + 1] ?? '');
    if (!fence) throw new Error(`README.md:${i + 1}: a run marker must precede a sh or ts block`);
    const to = lines.indexOf('```', i + 2);
    const options = marker[1].trim().split(/\s+/).filter(Boolean);
    const needs = options.find((o) => o.startsWith('needs='))?.slice(6);
    const replace = options.filter((o) => o.startsWith('as=')).map((o) => o.slice(3).split('=') as [string, string]);
    blocks.push({ lang: fence[1] as 'sh' | 'ts', from: i + 2, to, needs, replace });
  }
  return blocks;
}

/** A command or statement and the output lines the README shows for it. */
interface Step {
  code: string[];
  /** README line index of its last code line. */
  endAt: number;
  /** README line indexes of its output (`# …` lines, or the one `// …` comment). */
  outputAt: number[];
}

function shSteps(lines: string[], block: Block): Step[] {
  const steps: Step[] = [];
  for (let i = block.from; i < block.to; i++) {
    const last = steps.at(-1);
    if (lines[i].startsWith('#')) {
      last?.outputAt.push(i);
    } else if (last?.code.at(-1)?.endsWith('\\')) {
      last.code.push(lines[i]);
      last.endAt = i;
    } else {
      steps.push({ code: [lines[i]], endAt: i, outputAt: [] });
    }
  }
  return steps;
}

/** The form of an output line: its numbers any number. */
const form = (line: string) =>
  new RegExp(
    `^${line
      .split(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/)
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('-?\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?')}$`,
  );

/** The sizes of a check run: a couple of steps on a small corpus. */
function smaller(code: string, corpus: string): string {
  return code
    .replace(/--steps \d+/g, '--steps 2')
    .replace(/--batch-size \d+/g, '--batch-size 16')
    .replace(/steps: [\d_]+/g, 'steps: 2')
    .replace(/\.\.\/shared\/data\/wikitext-2/g, corpus);
}

/** A folder with a small WikiText-like corpus (training and validation files). */
function smallCorpus(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbert-readme-corpus-'));
  const words = ['the', 'crane', 'is', 'flying', 'a', 'driver', 'came', 'he', 'just', 'left', 'over', 'river'];
  const paragraph = (seed: number) =>
    ` ${Array.from({ length: 3 + (seed % 3) }, (_, s) => Array.from({ length: 5 + ((seed + s) % 4) }, (_, w) => words[(seed * 7 + s * 3 + w) % words.length]).join(' ')).join(' . ')} . `;
  writeFileSync(join(dir, 'wiki.train.tokens'), Array.from({ length: 400 }, (_, i) => paragraph(i)).join('\n'));
  writeFileSync(join(dir, 'wiki.valid.tokens'), Array.from({ length: 60 }, (_, i) => paragraph(i + 1000)).join('\n'));
  return dir;
}

/** A scratch folder to run in, with `dist` and `node_modules` of this checkout. */
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbert-readme-'));
  symlinkSync(join(ROOT, 'dist'), join(dir, 'dist'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** Runs `script` with `command` in `cwd`; its standard output's lines, or an error naming the block. */
function run(command: string[], cwd: string, where: string): string[] {
  const r = spawnSync(command[0], command.slice(1), { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    throw new Error(`${where}: exit ${r.status ?? r.signal}\n${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
  }
  return r.stdout.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
}

/** Runs the README's blocks; writes their outputs (`write`) or checks their form. */
export function runReadme(mode: 'write' | 'check'): { ran: number; skipped: string[] } {
  const lines = readFileSync(README, 'utf8').split('\n');
  const corpus = mode === 'check' ? smallCorpus() : resolve(ROOT, '../shared/data/wikitext-2');
  const skipped: string[] = [];
  /** README edits of `--write`: at line `at`, `remove` lines replaced by `insert`. */
  const edits: { at: number; remove: number; insert: string[] }[] = [];
  let ran = 0;
  for (const block of runnableBlocks(lines)) {
    const where = `README.md:${block.from}`;
    if (block.needs && !existsSync(join(ROOT, block.needs))) {
      skipped.push(`${where} (${block.needs} is absent)`);
      continue;
    }
    const prepare = (code: string) => {
      let out =
        mode === 'check' ? smaller(code, corpus) : code.replace(/\.\.\/shared\//g, `${resolve(ROOT, '../shared')}/`);
      for (const [from, to] of block.replace)
        out = out.split(from).join(to.startsWith('.') || !to.includes('/') ? to : join(ROOT, to));
      return out;
    };
    const cwd = scratch();
    const steps: Step[] = [];
    const outputs: string[][] = [];
    if (block.lang === 'sh') {
      for (const step of shSteps(lines, block)) {
        steps.push(step);
        outputs.push(run(['bash', '-c', prepare(step.code.join('\n'))], cwd, `${where}: ${step.code[0]}`));
      }
    } else {
      const source = lines.slice(block.from, block.to).map((l, k) => {
        const at = block.from + k;
        if (/^\s*console\.log\(.*\); \/\/ /.test(l)) steps.push({ code: [l], endAt: at, outputAt: [at] });
        return prepare(l).replace(/from 'tsbert'/, `from '${join(ROOT, 'src/index.ts')}'`);
      });
      const file = join(cwd, 'block.mts');
      writeFileSync(file, source.join('\n'));
      const printed = run([process.execPath, '--import', 'tsx', file], cwd, where);
      if (printed.length !== steps.length) {
        throw new Error(`${where}: printed ${printed.length} lines for ${steps.length} console.log lines`);
      }
      for (const p of printed) outputs.push([p]);
    }
    for (const [k, step] of steps.entries()) {
      const shown = step.outputAt.map((at) =>
        block.lang === 'sh' ? lines[at].slice(2) : lines[at].replace(/^.*?; \/\/ /, ''),
      );
      const got = outputs[k];
      if (mode === 'write') {
        if (block.lang === 'ts') {
          const line = lines[step.outputAt[0]].replace(/; \/\/ .*$/, `; // ${got[0]}`);
          edits.push({ at: step.outputAt[0], remove: 1, insert: [line] });
        } else {
          const insert = got.map((g) => `# ${g}`);
          edits.push({ at: step.outputAt[0] ?? step.endAt + 1, remove: step.outputAt.length, insert });
        }
        continue;
      }
      const bad = shown.length !== got.length ? 0 : shown.findIndex((s, i) => !form(s).test(got[i]));
      if (shown.length !== got.length || bad >= 0) {
        throw new Error(
          `${where}: \`${step.code[0]}\` printed\n${got.join('\n')}\nwhere the README shows\n${shown.join('\n')}\n(run \`npx tsx scripts/readme.ts --write\`)`,
        );
      }
    }
    ran++;
  }
  if (mode === 'write') {
    for (const e of edits.sort((a, b) => b.at - a.at)) lines.splice(e.at, e.remove, ...e.insert);
    writeFileSync(README, lines.join('\n'));
  }
  return { ran, skipped };
}

if (process.argv[1] === import.meta.filename) {
  const mode = process.argv[2] === '--write' ? 'write' : process.argv[2] === '--check' ? 'check' : undefined;
  if (!mode) {
    console.error('usage: tsx scripts/readme.ts --write | --check');
    process.exit(2);
  }
  const { ran, skipped } = runReadme(mode);
  console.log(
    `README: ${ran} block(s) ${mode === 'write' ? 'run and written' : 'checked'}${skipped.length ? `; skipped: ${skipped.join(', ')}` : ''}`,
  );
}
