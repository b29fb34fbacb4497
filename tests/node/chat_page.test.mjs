// The chat page that `brise serve` serves at /, driven in Debian's headless Chromium through
// puppeteer-core (no browser download). Run by run_with_server.sh, which sets BRISE_URL.
// CHROMIUM overrides the browser's path (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const url = process.env.BRISE_URL;
const modelId = process.env.BRISE_MODEL_ID;
if (!url) throw new Error('set BRISE_URL (see run_with_server.sh)');
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';

// stories260k answers in a few milliseconds, so the whole reply would reach the browser in
// one read; a throttled connection lets the test see the page render the stream as it comes.
const SLOW = { offline: false, latency: 0, upload: -1, download: 4000 };     // bytes/s
const SLOWER = { offline: false, latency: 0, upload: -1, download: 800 };
const FAST = { offline: false, latency: 0, upload: -1, download: -1 };
const WAIT = { timeout: 60_000, polling: 50 };

const count = (page, sel) => page.$$eval(sel, (els) => els.length);
const lastText = (page, sel) => page.$$eval(sel, (els) => (els.length ? els[els.length - 1].textContent : null));

async function setField(page, sel, value) {
  await page.$eval(sel, (el, v) => { el.value = v; el.dispatchEvent(new Event('change')); }, value);
}

// Sends `text` and waits until the n-th assistant message shows its speed line.
async function sendAndWait(page, text, n) {
  await page.type('#input', text);
  await page.click('#send');
  await page.waitForFunction(
    (n) => {
      const speeds = document.querySelectorAll('#messages .msg.assistant .speed');
      return speeds.length >= n && /tok\/s/.test(speeds[n - 1].textContent);
    }, WAIT, n);
}

// Records, in the page, each distinct length the last assistant message's text goes through.
async function watchGrowth(page) {
  await page.evaluate(() => {
    window.__lengths = [];
    const box = document.getElementById('messages');
    const observer = new MutationObserver(() => {
      const texts = box.querySelectorAll('.msg.assistant .text');
      const len = texts.length ? texts[texts.length - 1].textContent.length : 0;
      const seen = window.__lengths;
      if (len > 0 && seen[seen.length - 1] !== len) seen.push(len);
    });
    observer.observe(box, { subtree: true, childList: true, characterData: true });
  });
}

test('chat page', { timeout: 240_000 }, async (t) => {
  const profile = mkdtempSync(path.join(tmpdir(), 'brise-chromium-'));
  let browser;
  try {
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      userDataDir: profile,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push('console: ' + m.text()); });
    if (process.env.BRISE_API_KEY) {
      await page.evaluateOnNewDocument((k) => localStorage.setItem('brise.apiKey', k), process.env.BRISE_API_KEY);
    }

    await t.test('loads', async () => {
      const res = await page.goto(url + '/', { waitUntil: 'load' });
      assert.equal(res.status(), 200);
      assert.match(res.headers()['content-type'], /^text\/html/);
      for (const id of ['input', 'send', 'stop', 'messages']) assert.ok(await page.$('#' + id), `#${id} exists`);
      if (modelId) await page.waitForFunction((m) => document.body.textContent.includes(m), WAIT, modelId);
      assert.equal(await page.$eval('#stop', (el) => el.disabled), true, 'Stop is disabled while idle');
    });

    await t.test('streams a reply with its speed', async (st) => {
      await page.emulateNetworkConditions(SLOW);
      await setField(page, '#max-tokens', '40');
      await setField(page, '#temperature', '0');
      await watchGrowth(page);
      await sendAndWait(page, 'Tell me a story about a dog.', 1);
      const text = await lastText(page, '#messages .msg.assistant .text');
      assert.ok(text && text.trim().length > 0, 'the reply is not empty');
      assert.match(await lastText(page, '#messages .msg.assistant .speed'), /\d(\.\d+)? tok\/s/);
      const lengths = await page.evaluate(() => window.__lengths);
      st.diagnostic(`text lengths while streaming: ${JSON.stringify(lengths)}`);
      assert.ok(lengths.length > 1, `the text grew in more than one step: ${JSON.stringify(lengths)}`);
      assert.equal(lengths[lengths.length - 1], text.length);
      assert.equal(await page.$eval('#send', (el) => el.disabled), false, 'Send is enabled again');
    });

    await t.test('keeps the conversation and escapes text', async () => {
      const tricky = '<img src=x onerror="window.__xss=1"> and <b>bold</b>?';
      await sendAndWait(page, tricky, 2);
      assert.equal(await count(page, '#messages .msg.user'), 2);
      assert.equal(await count(page, '#messages .msg.assistant'), 2);
      assert.equal(await count(page, '#messages .msg.error'), 0);
      assert.equal(await lastText(page, '#messages .msg.user .text'), tricky, 'user text shown verbatim');
      assert.equal(await count(page, '#messages img, #messages b'), 0, 'no markup from message text');
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      assert.ok((await lastText(page, '#messages .msg.assistant .text')).trim().length > 0);
    });

    await t.test('Stop aborts the stream and the page stays usable', async () => {
      await page.click('#new');
      assert.equal(await count(page, '#messages .msg'), 0, 'New chat empties the list');
      await page.emulateNetworkConditions(SLOWER);
      await setField(page, '#max-tokens', '300');
      await setField(page, '#temperature', '0.8');
      await page.type('#input', 'Tell me a very long story.');
      await page.click('#send');
      await page.waitForFunction(
        () => document.querySelector('#messages .msg.assistant .text')?.textContent.length > 0, WAIT);
      assert.equal(await page.$eval('#stop', (el) => el.disabled), false, 'Stop is enabled while streaming');
      await page.click('#stop');
      await page.waitForFunction(
        () => !document.getElementById('send').disabled && document.getElementById('stop').disabled, WAIT);
      const speed = await lastText(page, '#messages .msg.assistant .speed');
      assert.match(speed, /stopped/, `the reply is marked as stopped: "${speed}"`);
      const stoppedAt = await lastText(page, '#messages .msg.assistant .text');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await lastText(page, '#messages .msg.assistant .text'), stoppedAt, 'no text after Stop');

      await page.emulateNetworkConditions(FAST);
      await setField(page, '#max-tokens', '20');
      await sendAndWait(page, 'And then?', 2);
      assert.equal(await count(page, '#messages .msg.user'), 2);
      assert.equal(await count(page, '#messages .msg.assistant'), 2);
      assert.equal(await count(page, '#messages .msg.error'), 0);
      assert.ok((await lastText(page, '#messages .msg.assistant .text')).trim().length > 0);
    });

    assert.deepEqual(pageErrors, [], 'no errors in the page');
  } finally {
    if (browser) await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
});
