// The BROWSER hook for the nix-cache-login integration tests.
//
//   browser.mjs URL
//
// The CLI opens its login URL with the `webbrowser` crate, which runs `$BROWSER URL`
// in the background with stdout and stderr sent to /dev/null. This script plays the
// user: it drives Debian's headless chromium through the test provider's pages
// (devInteractions login + consent, device-flow pages) and logs what it does to
// $BROWSER_LOG. See README.md in this folder for the environment variables.
//
// Exit status: 0 when the mode's goal was reached, 1 when it was not, 2 on bad usage,
// 3 when the time limit ran out.

import * as fs from 'node:fs';
import * as path from 'node:path';
import process from 'node:process';

const startedAt = Date.now();
const LOG = process.env.BROWSER_LOG || '/tmp/browser-hook.log';
const MODE = process.env.BROWSER_MODE || 'approve';
const USER = process.env.BROWSER_USER || 'alice';
const PASSWORD = process.env.BROWSER_PASSWORD || 'test';
const DENY_AT = process.env.BROWSER_DENY_AT || 'consent';
const USER_CODE = process.env.BROWSER_USER_CODE || '';
const CHROMIUM = process.env.BROWSER_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = 1000 * Number.parseInt(process.env.BROWSER_TIMEOUT || '60', 10);
const PID_DIR = process.env.BROWSER_PID_DIR || '';
const RESULT_FILE = process.env.BROWSER_RESULT || '';

const MODES = new Set(['approve', 'deny', 'ignore', 'forge-state', 'device']);

function log(message) {
  const line = `${new Date().toISOString()} [${process.pid}] ${message}\n`;
  try {
    fs.appendFileSync(LOG, line, { mode: 0o600 });
  } catch {
    // Nowhere else to write: stdout and stderr go to /dev/null.
  }
}

// Redacts the values of parameters that are secrets or one-time credentials.
function redact(url) {
  try {
    const u = new URL(url);
    for (const key of ['code', 'code_verifier', 'client_secret', 'access_token', 'refresh_token', 'id_token']) {
      if (u.searchParams.has(key)) u.searchParams.set(key, 'REDACTED');
    }
    return u.href;
  } catch {
    return String(url).slice(0, 200);
  }
}

// The proxy tests: chromium goes through this proxy (on 127.0.0.1), and these host names,
// which only that proxy resolves (to 127.0.0.1), count as loopback.
const PROXY = process.env.BROWSER_PROXY || '';
const PROXIED_HOSTS = (process.env.BROWSER_PROXIED_HOSTS || '').split(',').filter(Boolean);
if (PROXY && !/^http:\/\/127\.0\.0\.1:\d+$/.test(PROXY)) {
  process.stderr.write(`browser: BROWSER_PROXY must be http://127.0.0.1:PORT, got ${PROXY}\n`);
  process.exit(2);
}

function isLoopbackHost(hostname) {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (PROXY && PROXIED_HOSTS.includes(h)) return true;
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function isLoopbackUrl(url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'data:' || u.protocol === 'about:' || u.protocol === 'blob:') return true;
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
    return isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
}

// Direct children of a process (playwright starts chromium as our child, in its own
// process group), read from /proc.
function childPids(parent) {
  const pids = [];
  let entries = [];
  try { entries = fs.readdirSync('/proc'); } catch { return pids; }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === parent) pids.push(Number(entry));
    } catch { /* process went away */ }
  }
  return pids;
}

let pidFile;
function writePidFile(pids) {
  if (!PID_DIR) return;
  try {
    pidFile = path.join(PID_DIR, `${process.pid}.pids`);
    fs.writeFileSync(pidFile, `${pids.join(' ')}\n`);
  } catch (err) {
    log(`cannot write pid file: ${err.message}`);
  }
}
function removePidFile() {
  if (pidFile) {
    try { fs.unlinkSync(pidFile); } catch { /* gone already */ }
  }
}

const result = { mode: MODE, ok: false };
function writeResult() {
  if (!RESULT_FILE) return;
  try {
    fs.writeFileSync(RESULT_FILE, `${JSON.stringify(result)}\n`);
  } catch (err) {
    log(`cannot write result file: ${err.message}`);
  }
}

let browser;
let finished = false;

async function finish(code, why) {
  if (finished) return;
  finished = true;
  result.ok = code === 0;
  result.why = why;
  result.elapsedMs = Date.now() - startedAt;
  log(`EXIT ${code} ${why}`);
  writeResult();
  if (browser) {
    const closing = browser.close().catch(() => {});
    await Promise.race([closing, new Promise((r) => { setTimeout(r, 5000).unref(); })]);
  }
  removePidFile();
  process.exit(code);
}

const watchdog = setTimeout(() => { finish(3, `timeout after ${TIMEOUT_MS / 1000}s`); }, TIMEOUT_MS);
watchdog.unref();
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => { finish(4, `got ${sig}`); });
}

// ------------------------------------------------------------------ page helpers

async function visible(page, selector) {
  try {
    return await page.locator(selector).first().isVisible({ timeout: 200 });
  } catch {
    return false;
  }
}

// What kind of page is showing.
async function classify(page) {
  if (await visible(page, 'input[name="login"]')) return 'login';
  if (await page.locator('input[name="prompt"][value="consent"]').count()) return 'consent';
  if (await page.locator('form[id="op.deviceConfirmForm"]').count()) return 'device-confirm';
  if (await page.locator('form[id="op.deviceInputForm"]').count()) return 'device-input';
  const title = await page.title().catch(() => '');
  if (/Sign-in Success/i.test(title)) return 'device-success';
  if (/oops/i.test(title)) return 'error';
  return 'unknown';
}

async function bodyText(page) {
  try {
    return (await page.locator('body').innerText({ timeout: 2000 })).trim();
  } catch {
    return '';
  }
}

// Runs `action` (which starts a navigation) and waits until the main frame navigated.
async function actAndWait(page, action) {
  const nav = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
    timeout: 15000,
  }).catch(() => undefined);
  await action();
  await nav;
  await page.waitForLoadState('domcontentloaded', { timeout: 15000 }).catch(() => {});
}

// ------------------------------------------------------------------ main

async function main() {
  const url = process.argv[2];
  if (!url) {
    log('usage: browser.mjs URL');
    return finish(2, 'no URL given');
  }
  if (!MODES.has(MODE)) {
    log(`unknown BROWSER_MODE ${MODE}`);
    return finish(2, `unknown mode ${MODE}`);
  }
  writePidFile([process.pid]);
  log(`START mode=${MODE} user=${USER} url=${redact(url)}`);
  result.url = redact(url);

  if (MODE === 'ignore') {
    return finish(0, 'ignored the URL');
  }
  if (!isLoopbackUrl(url)) {
    return finish(1, 'refusing a non-loopback URL');
  }

  let redirectUri;
  try {
    redirectUri = new URL(url).searchParams.get('redirect_uri') || undefined;
  } catch { /* checked above */ }
  const isCallback = (u) => {
    if (!redirectUri) return false;
    try {
      const a = new URL(u);
      const b = new URL(redirectUri);
      return a.origin === b.origin && a.pathname === b.pathname;
    } catch {
      return false;
    }
  };

  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]',
      // Anything that is not loopback would go to a dead proxy; loopback bypasses
      // the proxy implicitly in chromium (so no <-loopback> here).
      `--proxy-server=${PROXY || 'http://127.0.0.1:9'}`,
    ],
  });
  const chromiumPids = childPids(process.pid);
  writePidFile([process.pid, ...chromiumPids]);
  log(`chromium ${browser.version()} pids=${chromiumPids.join(',')}`);

  // A new context is a fresh profile: no cookies, no provider session.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.route('**/*', (route) => {
    const reqUrl = route.request().url();
    if (isLoopbackUrl(reqUrl)) return route.continue();
    log(`BLOCKED ${redact(reqUrl)}`);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);

  // Watch the callback: status, and whether the request failed.
  const callbacks = [];
  page.on('response', (response) => {
    const u = response.url();
    if (isCallback(u)) {
      callbacks.push({ url: u, status: response.status() });
      log(`CALLBACK_RESPONSE status=${response.status()} url=${redact(u)}`);
    }
  });
  page.on('requestfailed', (request) => {
    const u = request.url();
    if (isCallback(u)) {
      callbacks.push({ url: u, failure: request.failure()?.errorText });
      log(`CALLBACK_FAILED ${request.failure()?.errorText} url=${redact(u)}`);
    }
  });

  if (MODE === 'forge-state') {
    if (!redirectUri) return finish(1, 'forge-state needs a redirect_uri in the URL');
    const forged = new URL(redirectUri);
    forged.searchParams.set('code', 'forged-code');
    forged.searchParams.set('state', 'forged-state');
    let status;
    let text = '';
    try {
      const response = await page.goto(forged.href, { waitUntil: 'domcontentloaded', timeout: 10000 });
      status = response?.status();
      text = await bodyText(page);
    } catch (err) {
      status = `failed: ${err.message.split('\n')[0]}`;
    }
    result.forged = { status, text: text.slice(0, 500) };
    log(`FORGED status=${status} text=${JSON.stringify(text.slice(0, 500))}`);
    callbacks.length = 0;
  }

  log(`GOTO ${redact(url)}`);
  try {
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15000 });
  } catch (err) {
    log(`goto failed: ${err.message.split('\n')[0]}`);
  }

  const seen = new Map();
  for (let step = 0; step < 30; step += 1) {
    const current = page.url();

    if (isCallback(current) || callbacks.length) {
      // Let the callback page finish loading, then read it.
      await page.waitForLoadState('domcontentloaded', { timeout: 5000 }).catch(() => {});
      const last = callbacks[callbacks.length - 1] || { url: current };
      const text = await bodyText(page);
      const params = new URL(last.url).searchParams;
      result.callback = {
        status: last.status,
        failure: last.failure,
        error: params.get('error') || undefined,
        hasCode: params.has('code'),
        state: params.get('state') || undefined,
        text: text.slice(0, 2000),
      };
      log(`CALLBACK status=${last.status ?? '-'} error=${params.get('error') ?? '-'} code=${params.has('code')} text=${JSON.stringify(text.slice(0, 500))}`);
      if (MODE === 'deny') {
        return finish(params.get('error') === 'access_denied' ? 0 : 1, 'reached the callback');
      }
      return finish(params.has('code') && last.status !== undefined && last.status < 400 ? 0 : 1, 'reached the callback');
    }

    const kind = await classify(page);
    const key = `${kind} ${current}`;
    seen.set(key, (seen.get(key) || 0) + 1);
    log(`PAGE ${kind} ${redact(current)}`);
    if (seen.get(key) > 3) {
      return finish(1, `stuck on ${kind} page`);
    }

    switch (kind) {
      case 'login': {
        if (MODE === 'deny' && DENY_AT === 'login') {
          log('DENY at login: clicking Cancel');
          await actAndWait(page, () => page.locator('a', { hasText: 'Cancel' }).first().click());
          break;
        }
        log(`LOGIN as ${USER}`);
        await page.fill('input[name="login"]', USER);
        await page.fill('input[name="password"]', PASSWORD);
        await actAndWait(page, () => page.locator('button[type="submit"]').first().click());
        break;
      }
      case 'consent': {
        if (MODE === 'deny') {
          log('DENY at consent: clicking Cancel');
          await actAndWait(page, () => page.locator('a', { hasText: 'Cancel' }).first().click());
          break;
        }
        log('CONSENT: clicking Continue');
        await actAndWait(page, () => page.locator('button[type="submit"]').first().click());
        break;
      }
      case 'device-input': {
        const text = await bodyText(page);
        if (/The Sign-in request was interrupted/i.test(text)) {
          result.device = { aborted: true };
          log('DEVICE_ABORTED');
          return finish(MODE === 'deny' ? 0 : 1, 'device flow aborted');
        }
        if (/incorrect|error processing/i.test(text) && seen.get(key) > 1) {
          result.error = text.slice(0, 500);
          return finish(1, 'device code refused');
        }
        const code = USER_CODE || new URL(url).searchParams.get('user_code');
        if (!code) return finish(1, 'device input page but no BROWSER_USER_CODE');
        log(`DEVICE user code ${code}`);
        await page.fill('input[name="user_code"]', code);
        await actAndWait(page, () => page.locator('button[type="submit"][form="op.deviceInputForm"]').click());
        break;
      }
      case 'device-confirm': {
        if (MODE === 'deny') {
          log('DENY device: clicking Abort');
          await actAndWait(page, () => page.locator('button[name="abort"]').click());
          break;
        }
        log('DEVICE confirm: clicking Continue');
        await actAndWait(page, () => page.locator('button[autofocus][form="op.deviceConfirmForm"]').click());
        break;
      }
      case 'device-success': {
        const text = await bodyText(page);
        result.device = { success: true, text: text.slice(0, 500) };
        log(`DEVICE_SUCCESS text=${JSON.stringify(text.slice(0, 300))}`);
        return finish(MODE === 'device' ? 0 : 1, 'device flow approved');
      }
      case 'error': {
        const text = await bodyText(page);
        result.error = text.slice(0, 2000);
        log(`PROVIDER_ERROR text=${JSON.stringify(text.slice(0, 500))}`);
        if (MODE === 'deny' && /access_denied|aborted/i.test(text)) {
          return finish(0, 'provider shows access_denied');
        }
        return finish(1, 'provider error page');
      }
      default: {
        // The auto-submitting form_post page of the device flow, a redirect in
        // progress, or an unexpected page: wait a moment for it to move on.
        const text = await bodyText(page);
        log(`WAIT on ${redact(current)} text=${JSON.stringify(text.slice(0, 200))}`);
        await page.waitForEvent('framenavigated', {
          predicate: (frame) => frame === page.mainFrame(),
          timeout: 3000,
        }).catch(() => {});
        await page.waitForLoadState('domcontentloaded', { timeout: 5000 }).catch(() => {});
      }
    }
  }
  return finish(1, 'too many steps');
}

main().catch((err) => finish(1, `error: ${String(err?.stack || err).split('\n').slice(0, 3).join(' | ')}`));
