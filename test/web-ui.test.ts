// The web UI in a real browser (Debian's chromium through playwright-core) against a real `ringlet serve`
// (dist/, from `npm run build`) over runs trained here: a run's chart growing while `ringlet train` writes
// to it, the playground streaming from a real checkpoint and Stop ending the generation on the server, an
// evaluation submitted from a run's page, compare with two runs, and every page at desktop and phone
// widths, light and dark, with no console errors; screenshots go to test-output/web/ for a person to look at.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { RunDetail } from '../web/api.js';
import { prepareTinyDataset, TINY_MODEL } from './tiny-dataset.js';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'ringlet.js');
const screenshots = path.join(root, 'test-output', 'web');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-web-ui-'));
const runsDir = path.join(work, 'runs');
const configFile = path.join(work, 'config.json');
let dataset: string;
let server: ChildProcess;
let url: string;
let browser: Browser;

const CHECKPOINT = 'tiny/a/step-00000006';

/** `ringlet train` from dist/, as a person runs it. */
function startTraining(name: string, flags: string[]): ChildProcess {
  const args = [cli, 'train', '--data', dataset, '--out', path.join(runsDir, name), '--config', configFile, '--json', ...flags];
  return spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
}

function exited(child: ChildProcess): Promise<number | null> {
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(code) : reject(new Error(`exit ${code}: ${stderr.slice(-2000)}`))));
  });
}

/** Polls `probe` until it gives a value, or fails naming what it waited for. */
async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const api = async <T>(pathname: string, init?: RequestInit) => (await (await fetch(url + pathname, init)).json()) as T;

interface View {
  page: Page;
  /** Console errors and warnings, and uncaught exceptions, since the page opened. */
  problems: string[];
  close(): Promise<void>;
}

async function open(hash: string, { width = 1280, scheme = 'light' as 'light' | 'dark' } = {}): Promise<View> {
  const context = await browser.newContext({ viewport: { width, height: 900 }, colorScheme: scheme });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  await page.goto(`${url}/${hash}`);
  return { page, problems, close: () => context.close() };
}

/** The playground with the tiny checkpoint picked, once the list of checkpoints has come. */
async function openPlayground(): Promise<View> {
  const view = await open(`#/playground?checkpoint=${encodeURIComponent(CHECKPOINT)}`);
  await until('the checkpoint list', async () => (await view.page.getByLabel('Checkpoint').inputValue()) === CHECKPOINT);
  return view;
}

/** The point count a chart reports under its title ("… · 42 points"), 0 before it has any. */
async function chartPoints(page: Page, title: string): Promise<number> {
  const text = await page.locator('figure.chart', { hasText: title }).locator('.latest').innerText();
  return Number(/(\d+) points/.exec(text)?.[1] ?? 0);
}

before(async () => {
  for (const built of [cli, path.join(root, 'dist', 'web', 'index.html')])
    assert.ok(fs.existsSync(built), `${built} is missing: run \`npm run build\` first`);
  dataset = await prepareTinyDataset(root, work);
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      model: TINY_MODEL,
      optimizer: { lr: 0.01, warmup_steps: 2 },
      training: { batch_size: 4, eval_windows: 4, log_every: 1 },
    }),
  );
  const finished = ['--max-steps', '6', '--eval-every', '3', '--checkpoint-every', '3'];
  await Promise.all([
    exited(startTraining('tiny/a', [...finished, '--seed', '1'])),
    exited(startTraining('tiny-b', [...finished, '--seed', '2'])),
  ]);
  server = spawn(process.execPath, [cli, 'serve', '--runs', runsDir, '--port', '0', '--poll-ms', '100'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let serverLog = '';
  server.stderr!.on('data', (chunk) => (serverLog = (serverLog + chunk).slice(-4000)));
  // The first line on stdout names the address.
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: server.stdout! }).once('line', resolve);
    server.once('exit', (code) => reject(new Error(`ringlet serve exited (${code}): ${serverLog}`)));
  });
  url = (JSON.parse(line) as { listening: string }).listening;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  fs.mkdirSync(screenshots, { recursive: true });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  }
  fs.rmSync(work, { recursive: true, force: true });
});

test(
  'a running run appears on the runs page and its chart grows while ringlet train writes to it',
  { timeout: 90_000 },
  async () => {
    const view = await open('#/runs');
    const { page } = view;
    await page.getByRole('link', { name: 'tiny-b' }).waitFor();
    const training = startTraining('growing', [
      '--time-limit',
      '12',
      '--log-every',
      '5',
      '--eval-every',
      '40',
      '--checkpoint-every',
      '100000',
    ]);
    const done = exited(training);
    // The new run comes in over the runs stream, without a reload.
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'growing', exact: true }) });
    await row.getByText('running').waitFor({ timeout: 20_000 });
    // The test file has no DOM types: what runs in the page is written as expressions.
    await page.evaluate('window.sameDocument = true');
    await row.getByRole('link', { name: 'growing' }).click();
    await page.getByRole('heading', { name: /growing/ }).waitFor();
    const first = await until('the loss chart to have points', async () => (await chartPoints(page, 'Loss')) || null);
    const second = await until('the loss chart to grow', async () => {
      const n = await chartPoints(page, 'Loss');
      return n > first && n;
    });
    await until('the loss chart to grow again', async () => (await chartPoints(page, 'Loss')) > second);
    assert.equal(await page.evaluate('window.sameDocument'), true, 'the page grew without reloading');
    await done;
    await page.locator('h1 .badge', { hasText: 'finished' }).waitFor({ timeout: 10_000 });
    // Every point the run logged reached the chart: the stream and the first fetch left no gap.
    const logged = fs
      .readFileSync(path.join(runsDir, 'growing', 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"type":"step"')).length;
    await until(
      `the chart to hold all ${logged} logged steps`,
      async () => (await chartPoints(page, 'Gradient norm')) === logged,
    );
    assert.deepEqual(view.problems, []);
    await view.close();
  },
);

test(
  'the playground streams tokens with their probabilities and alternatives, from a real checkpoint',
  { timeout: 60_000 },
  async () => {
    const view = await openPlayground();
    const { page } = view;
    await page.getByLabel('Prompt').fill('Det var en gång');
    await page.getByLabel('Max tokens').fill('24');
    await page.getByLabel('Show probabilities').check();
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByText('24 tokens (max tokens)').waitFor();
    const output = await page.getByRole('group', { name: 'Output' }).innerText();
    assert.ok(output.startsWith('Det var en gång') && output.length > 'Det var en gång'.length, output);
    const tokens = page.locator('.token.scored');
    await tokens.first().click();
    await page.getByRole('heading', { name: /^Token 1:/ }).waitFor();
    assert.ok((await page.getByRole('list', { name: 'Alternatives' }).getByRole('listitem').count()) >= 1);
    // Arrow keys move through the tokens; the alternatives follow the focus.
    await page.keyboard.press('ArrowRight');
    const second = await tokens.nth(1).getAttribute('data-index');
    await page.getByRole('heading', { name: new RegExp(`^Token ${Number(second) + 1}:`) }).waitFor();
    await page.screenshot({ path: path.join(screenshots, 'playground-output-desktop-light.png'), fullPage: true });
    assert.deepEqual(view.problems, []);
    await view.close();
  },
);

test('Stop ends the generation on the server: no more tokens, nothing left generating', { timeout: 60_000 }, async () => {
  const view = await openPlayground();
  const { page } = view;
  await page.getByLabel('Prompt').fill('Det var en gång');
  await page.getByLabel('Max tokens').fill('1024');
  // Greedy: the same continuation every time, so the model does not end the document by chance first.
  await page.getByLabel('Temperature').fill('0');
  // The tiny model makes a thousand tokens in a fraction of a second, faster than a click from here arrives;
  // so the page itself clicks Stop the moment the first token shows.
  const stopAtFirstToken = page.evaluate(`new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (!document.querySelector('.output .token')) return;
      observer.disconnect();
      [...document.querySelectorAll('button')].find((button) => button.textContent === 'Stop').click();
      resolve();
    });
    observer.observe(document.body, { childList: true, subtree: true });
  })`);
  await page.getByRole('button', { name: 'Generate' }).click();
  await stopAtFirstToken;
  const tokens = page.locator('.output .token');
  await page.getByText('stopped', { exact: true }).waitFor();
  assert.equal(await page.getByText(/\(max tokens\)|\(end of document\)/).count(), 0, 'the generation was stopped, not finished');
  await until(
    'the server to stop generating',
    async () => (await api<{ generating: number }>('/api/status')).generating === 0,
    5_000,
  );
  const shown = await tokens.count();
  assert.ok(shown < 1024, `${shown} tokens`);
  await page.waitForTimeout(500);
  assert.equal(await tokens.count(), shown, 'no token arrived after Stop');
  assert.ok(await page.getByRole('button', { name: 'Generate' }).isEnabled());
  assert.deepEqual(view.problems, []);
  await view.close();
});

test('the playground names bad settings next to their fields, its own checks and the server’s', { timeout: 60_000 }, async () => {
  const view = await openPlayground();
  const { page } = view;
  const generate = page.getByRole('button', { name: 'Generate' });
  await generate.click();
  await page.getByText('Write a prompt for the model to continue.').waitFor();
  assert.equal(await page.getByLabel('Prompt').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Prompt').fill('x'.repeat(1_000_000));
  await page.getByText('The prompt has 1,000,000 characters; the most is 100,000.').waitFor();
  await page.getByLabel('Prompt').fill('Det var');
  for (const [label, value, message] of [
    ['Temperature', '3', 'Temperature is from 0'],
    ['Top-p', '0', 'Top-p is above 0 and at most 1'],
    ['Top-k', '1.5', 'Top-k is a whole number'],
    ['Repetition penalty', '0', 'Repetition penalty is above 0'],
    ['Max tokens', '5000', 'Max tokens is a whole number from 1 to 1024'],
  ] as const) {
    await page.getByLabel(label).fill(value);
    await generate.click();
    await page.getByText(message).waitFor();
    assert.equal(await page.evaluate("document.activeElement.getAttribute('aria-invalid')"), 'true', `${label} has focus`);
    await page
      .getByLabel(label)
      .fill({ Temperature: '0.8', 'Top-p': '0.95', 'Top-k': '50', 'Repetition penalty': '1.1', 'Max tokens': '8' }[label]);
  }
  // What only the server knows: the checkpoint's vocabulary (512 tokens) bounds top-k.
  await page.getByLabel('Top-k').fill('4000');
  await generate.click();
  await page.getByText(/top_k 4000 .*vocabulary/).waitFor();
  assert.equal(await page.getByLabel('Top-k').getAttribute('aria-invalid'), 'true');
  await page.screenshot({ path: path.join(screenshots, 'playground-errors-desktop-light.png'), fullPage: true });
  // The server's refusal is a 400 the browser logs as a failed resource; nothing else may be logged.
  assert.deepEqual(
    view.problems.filter((problem) => !/Failed to load resource: the server responded with a status of 400/.test(problem)),
    [],
  );
  await view.close();
});

test("an evaluation submitted from a run's page shows its scores there", { timeout: 90_000 }, async () => {
  const view = await open(`#/runs/${encodeURIComponent('tiny/a')}`);
  const { page } = view;
  const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: '6', exact: true }) });
  await row.getByRole('button', { name: 'Evaluate…' }).click();
  const form = page.getByRole('form', { name: `Evaluate ${CHECKPOINT}` });
  for (const suite of ['blimp', 'dalaj']) await form.getByLabel(suite).check();
  await form.getByLabel(/Items per group/).fill('2');
  await form.getByRole('button', { name: 'Submit evaluation' }).click();
  await form.getByText('Submitted.').waitFor();
  await row.getByText('scored').waitFor({ timeout: 60_000 });
  await page.getByRole('heading', { name: /Scores at step 6/ }).waitFor();
  assert.ok((await page.getByRole('list', { name: 'blimp accuracy by group' }).getByRole('listitem').count()) > 10);
  assert.deepEqual(view.problems, []);
  await view.close();
});

test(
  'compare shows two runs on one chart, their evaluations side by side and the paired differences',
  { timeout: 90_000 },
  async () => {
    const submitted = await api<{ id: string }>('/api/evaluations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ checkpoint: 'tiny-b/step-00000006', suites: ['val', 'blimp', 'dalaj'], limit: 2 }),
    });
    assert.ok(submitted.id);
    await until(
      'the evaluation of tiny-b',
      async () =>
        (await api<RunDetail>('/api/runs/tiny-b')).checkpoints.some((c) => c.evaluations.some((e) => e.status === 'done')),
      60_000,
    );
    const view = await open(`#/compare?runs=${encodeURIComponent('tiny/a')},tiny-b`);
    const { page } = view;
    const chart = page.locator('figure.chart', { hasText: 'Validation bits per byte' });
    await chart.waitFor();
    for (const run of ['tiny/a', 'tiny-b']) await chart.locator('.u-legend').getByText(run, { exact: true }).waitFor();
    assert.match(await chart.locator('.latest').innerText(), /tiny\/a \d\.\d+ · tiny-b \d\.\d+/);
    const sideBySide = page.getByRole('region', { name: 'Evaluations side by side' });
    for (const run of ['tiny/a', 'tiny-b']) await sideBySide.getByRole('columnheader', { name: new RegExp(run) }).waitFor();
    const pairs = page.getByRole('region', { name: 'Paired differences' });
    for (const suite of ['val', 'blimp', 'dalaj']) await pairs.getByRole('cell', { name: suite, exact: true }).waitFor();
    // The metric selector redraws the one chart with the other curve.
    await page.getByLabel('Metric').selectOption('loss');
    await page.locator('figure.chart', { hasText: 'Training loss' }).waitFor();
    assert.deepEqual(view.problems, []);
    await view.close();
  },
);

test(
  'every page loads at desktop and phone widths, light and dark, without console errors or sideways scrolling',
  { timeout: 180_000 },
  async () => {
    const pages: Array<[string, string, (page: Page) => Promise<unknown>]> = [
      ['runs', '#/runs', (page) => page.getByRole('link', { name: 'growing' }).waitFor()],
      [
        'run',
        `#/runs/${encodeURIComponent('tiny/a')}`,
        (page) => page.getByRole('heading', { name: /Scores at step 6/ }).waitFor(),
      ],
      [
        'compare',
        `#/compare?runs=${encodeURIComponent('tiny/a')},tiny-b`,
        (page) => page.getByRole('region', { name: 'Paired differences' }).waitFor(),
      ],
      [
        'playground',
        '#/playground',
        async (page) => until('a checkpoint', async () => (await page.getByLabel('Checkpoint').inputValue()) !== ''),
      ],
    ];
    for (const [name, hash, ready] of pages)
      for (const [device, width] of [
        ['desktop', 1280],
        ['phone', 375],
      ] as const)
        for (const scheme of ['light', 'dark'] as const) {
          const view = await open(hash, { width, scheme });
          await ready(view.page);
          // Let the charts take their size and the streams connect before the picture.
          await view.page.getByText('● live').or(view.page.locator('main h1')).first().waitFor();
          await view.page.waitForTimeout(300);
          await view.page.screenshot({ path: path.join(screenshots, `${name}-${device}-${scheme}.png`), fullPage: true });
          const scrollWidth = await view.page.evaluate<number>('document.documentElement.scrollWidth');
          assert.ok(scrollWidth <= width, `${name} at ${width} px is ${scrollWidth} px wide`);
          assert.deepEqual(view.problems, [], `${name} ${device} ${scheme}`);
          await view.close();
        }
  },
);
