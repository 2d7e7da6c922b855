// Drives the web chat demo page in headless Chromium as a visitor would.
//
// Env: DEMO_URL (http://127.0.0.1:8080/webchat/<account>/demo), VISITOR_NAME, VISITOR_TEXT,
// AGENT_TEXT, SCREENSHOT (final png path), TIMEOUT_MS (per waiting step, default 60000),
// CHROMIUM (default /usr/bin/chromium); optional VISITOR_EMAIL / VISITOR_PHONE for accounts
// where those pre-chat fields are required.
//
// stdout gets one JSON line per step: {"step":"sent"} (the visitor's message was accepted: the
// orchestrator now sends the agent reply), {"step":"reply_seen"}, {"step":"history_seen"} (after
// a reload the conversation came back from the server), or {"step":"failed","error":...,
// "console":[...],"state":{...}} with a screenshot next to SCREENSHOT ("-failure.png"), exit 1.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const env = process.env;
const DEMO_URL = env.DEMO_URL;
const VISITOR_NAME = env.VISITOR_NAME || 'Ada Lovelace';
const VISITOR_TEXT = env.VISITOR_TEXT || 'Hello from the browser test';
const AGENT_TEXT = env.AGENT_TEXT || 'Hello from an agent';
const SCREENSHOT = path.resolve(env.SCREENSHOT || 'artifacts/webchat-demo.png');
const TIMEOUT = Number(env.TIMEOUT_MS || 60000);
const FAILURE_SHOT = SCREENSHOT.replace(/(\.png)?$/i, '-failure.png');

const consoleLines = [];
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let context;
let page;
let step = 'starting Chromium'; // what we are doing, for the failure message
const userDataDir = mkdtempSync(path.join(tmpdir(), 'switchboard-webchat-'));

// Playwright CSS / test-id locators pierce open shadow roots, so these reach into the widget.
const byTestId = (id) => page.locator(`[data-testid="${id}"]`);
function bubbles(author, text) {
  const exact = new RegExp(`^\\s*${escapeRe(text)}\\s*$`);
  return page
    .locator(`[data-testid="message"][data-author="${author}"]`)
    .filter({ has: page.locator('[data-testid="message-text"]', { hasText: exact }) });
}

async function waitUntil(what, fn, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last === true) return;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last && last !== true && last !== false ? ` (${last})` : ''}`);
    await sleep(200);
  }
}

async function openWidget() {
  await byTestId('launcher').waitFor({ state: 'visible' });
  const panel = byTestId('panel');
  // The demo opens the widget itself (data-open="true"); give it a moment before clicking.
  await panel.waitFor({ state: 'visible', timeout: 3000 }).catch(() => {});
  if (!(await panel.isVisible())) await byTestId('launcher').click();
  await panel.waitFor({ state: 'visible' });
}

async function fillIfPresent(id, value, onlyIfRequired) {
  const input = byTestId(id);
  if ((await input.count()) === 0) return;
  if (onlyIfRequired && (await input.getAttribute('aria-required')) !== 'true') return;
  await input.fill(value);
}

async function run() {
  if (!DEMO_URL) throw new Error('DEMO_URL is not set');
  step = 'starting Chromium';
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: TIMEOUT,
    viewport: { width: 1280, height: 800 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  context.setDefaultTimeout(TIMEOUT);
  page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => consoleLines.push(`[requestfailed] ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('websocket', (ws) => {
    consoleLines.push(`[websocket] open ${ws.url().replace(/token=[^&]+/, 'token=…')}`);
    ws.on('close', () => consoleLines.push('[websocket] closed'));
  });

  // 1. A new visitor: pre-chat form, first message.
  step = `loading ${DEMO_URL} and opening the widget`;
  await page.goto(DEMO_URL, { waitUntil: 'domcontentloaded' });
  await openWidget();
  step = 'filling the pre-chat form';
  await byTestId('prechat-form').waitFor({ state: 'visible' });
  await fillIfPresent('prechat-name', VISITOR_NAME, false);
  await fillIfPresent('prechat-email', env.VISITOR_EMAIL || 'visitor@example.com', true);
  await fillIfPresent('prechat-phone', env.VISITOR_PHONE || '+14155550100', true);
  await byTestId('prechat-submit').click();
  step = 'waiting for the composer (session created?)';
  const input = byTestId('composer-input');
  await input.waitFor({ state: 'visible' });
  await input.fill(VISITOR_TEXT);
  await byTestId('composer-send').click();
  // Accepted = the server's echo gave the bubble its seq.
  step = 'waiting for the visitor message to be accepted (bubble with data-seq)';
  await bubbles('visitor', VISITOR_TEXT).and(page.locator('[data-seq]')).first().waitFor({ state: 'visible' });
  emit({ step: 'sent' });

  // 2. The orchestrator answers as an agent through the API.
  step = 'waiting for the agent reply bubble';
  await bubbles('agent', AGENT_TEXT).first().waitFor({ state: 'visible' });
  emit({ step: 'reply_seen' });

  // 3. Reload: the session token in localStorage resumes the visitor, the server replays history.
  step = 'reloading and reopening the widget';
  await page.reload({ waitUntil: 'domcontentloaded' });
  await openWidget();
  step = 'waiting for the history after the reload';
  await bubbles('visitor', VISITOR_TEXT).first().waitFor({ state: 'visible' });
  await bubbles('agent', AGENT_TEXT).first().waitFor({ state: 'visible' });
  await sleep(750); // let any (wrong) duplicate arrive before counting
  await waitUntil('exactly one visitor and one agent bubble, no pre-chat form', async () => {
    const v = await bubbles('visitor', VISITOR_TEXT).count();
    const a = await bubbles('agent', AGENT_TEXT).count();
    const form = await byTestId('prechat-form').count();
    const input = await byTestId('composer-input').isVisible();
    if (v === 1 && a === 1 && form === 0 && input) return true;
    return `visitor bubbles ${v}, agent bubbles ${a}, pre-chat form ${form ? 'shown' : 'absent'}, composer ${input ? 'shown' : 'hidden'}`;
  }, 5000);
  step = 'taking the screenshot';
  mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  emit({ step: 'history_seen' });
}

async function main() {
  let code = 0;
  try {
    await run();
  } catch (e) {
    code = 1;
    let state = null;
    try {
      mkdirSync(path.dirname(FAILURE_SHOT), { recursive: true });
      if (page) await page.screenshot({ path: FAILURE_SHOT, timeout: 10000 });
      if (page) state = await page.evaluate(() => (window.SwitchboardWebchat ? window.SwitchboardWebchat.state() : null));
    } catch (e2) {
      consoleLines.push(`[test] failure screenshot/state: ${e2.message}`);
    }
    const error = `${step}: ${String(e && e.message ? e.message : e).split('\n')[0]}`;
    emit({ step: 'failed', error, screenshot: FAILURE_SHOT, state, console: consoleLines });
    for (const line of consoleLines) process.stderr.write(`browser: ${line}\n`);
  }
  try {
    if (context) await context.close();
  } catch {
    /* already gone */
  }
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

main();
