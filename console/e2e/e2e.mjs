// End-to-end: a real tidegate gateway, a real tidegate-console and two real upstreams on
// loopback, driven through the UI in headless Chromium. Run by scripts/test.sh:
//   TIDEGATE_BIN=target/debug/tidegate TIDEGATE_CONSOLE_BIN=target/debug/tidegate-console node console/e2e/e2e.mjs
// Screenshots of the main pages are written to docs/screenshots/ (console/README.md shows them).

import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const gatewayBin = path.resolve(root, process.env.TIDEGATE_BIN || 'target/debug/tidegate');
const consoleBin = path.resolve(root, process.env.TIDEGATE_CONSOLE_BIN || 'target/debug/tidegate-console');
const shots = path.join(root, 'docs/screenshots');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tidegate-e2e-'));
const children = [];
const servers = [];
let failed = false;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitPort(port, what) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${what} did not listen on ${port}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start(bin, args, log) {
  const out = fs.openSync(path.join(work, log), 'w');
  const child = spawn(bin, args, { stdio: ['ignore', out, out], env: { ...process.env, RUST_LOG: 'info' } });
  children.push(child);
  return child;
}

function upstream(name, port) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
    res.end(name);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

/// GET on the gateway → [status, x-upstream or body].
function get(port, p, headers = {}) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers, agent: keepAlive }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve([res.statusCode, res.headers['x-upstream'] || body]));
    });
    req.on('error', () => resolve([0, '']));
  });
}
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });

async function eventually(ms, check, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return Date.now();
    await sleep(50);
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

const steps = [];
function step(name, fn) { steps.push([name, fn]); }

async function main() {
  const [port, adminPort, consolePort, bluePort, greenPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  await upstream('blue', bluePort);
  await upstream('green', greenPort);
  const configPath = path.join(work, 'tidegate.toml');
  fs.writeFileSync(configPath, `[server]
listen = ["127.0.0.1:${port}"]
threads = 1
pid_file = "${work}/gw.pid"
upgrade_sock = "${work}/gw.sock"

[admin]
listen = "127.0.0.1:${adminPort}"
token = "e2e-admin-token"

[access_log]
enabled = false

[[consumers]]
name = "alice"
tenant = "acme"
keys = ["k-alice-e2e-1"]

[plugins.auth]
type = "key-auth"

[plugins.tenant-limit]
type = "key-rate-limit"
key = "tenant"
limits = [{ per = "minute", count = 1000 }]

[plugins.firewall]
type = "waf"

[[services]]
name = "chat"
endpoints = [{ addr = "127.0.0.1:${bluePort}", labels = { stage = "blue" } }, { addr = "127.0.0.1:${greenPort}", labels = { stage = "green" } }]

[[routes]]
name = "chat"
path = "/chat/"
service = "chat"
split = [{ labels = { stage = "blue" }, weight = 100 }, { labels = { stage = "green" }, weight = 0 }]

[[routes]]
name = "api"
path = "/api/"
service = "chat"
plugins = ["auth", "tenant-limit"]

[[routes]]
name = "shop"
path = "/shop/"
service = "chat"
plugins = ["firewall"]
`);
  const hash = (pw) => execFileSync(consoleBin, ['hash-password'], { input: pw }).toString().trim();
  fs.writeFileSync(path.join(work, 'console.toml'), `listen = "127.0.0.1:${consolePort}"
[store]
kind = "file"
path = "${configPath}"
history_dir = "${work}/history"
[fleet]
gateways = [{ name = "gw-1", admin = "http://127.0.0.1:${adminPort}" }]
token = "e2e-admin-token"
scrape_interval_ms = 500
[[users]]
name = "olga"
password_hash = "${hash('olga-e2e-pw')}"
role = "operator"
[[users]]
name = "vic"
password_hash = "${hash('vic-e2e-pw')}"
role = "viewer"
`);
  // As the Ingress controller's Secret puts it beside the config (gateway/src/ingress/report.rs).
  fs.writeFileSync(path.join(work, 'report.json'), JSON.stringify({
    ingresses: 4,
    gateway_api_routes: 1,
    unsupported: [{ object: 'chat/chat', what: 'configuration-snippet', note: 'raw nginx configuration cannot be translated' }],
    differs: [{ object: 'chat/chat-canary', what: 'canary-by-cookie', note: 'a route with cookies = { chat_canary = "always" }' }],
  }));
  start(gatewayBin, ['-c', configPath], 'gateway.log');
  await waitPort(port, 'gateway');
  await waitPort(adminPort, 'gateway admin');
  start(consoleBin, ['-c', path.join(work, 'console.toml')], 'console.log');
  await waitPort(consolePort, 'console');
  const base = `http://127.0.0.1:${consolePort}`;

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('dialog', (d) => d.accept());
  const id = (t) => page.getByTestId(t);
  const shot = async (name) => {
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };
  const fileText = () => fs.readFileSync(configPath, 'utf8');

  step('log in as an operator', async () => {
    await page.goto(base + '/');
    await id('login-user').fill('olga');
    await id('login-password').fill('wrong password');
    await id('login-submit').click();
    await id('login-error').waitFor();
    await id('login-password').fill('olga-e2e-pw');
    await id('login-submit').click();
    await id('nav-fleet').waitFor();
    await page.waitForURL(/#\/fleet/);
    await id('fleet-row-gw-1').waitFor({ timeout: 10000 });
    // Steady traffic for a few scrapes, so the live figures show something.
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      await get(port, '/chat/x');
      await get(port, '/api/x', { 'x-api-key': 'k-alice-e2e-1' });
      await get(port, '/nowhere');
      await get(port, "/shop/items?id=1%27%20OR%20%271%27%3D%271");
    }
    // The firewall's top rules: SQL injection (CRS 942100) blocked on the shop route.
    await id('waf-rule-942100').waitFor({ timeout: 5000 });
    const row = await id('waf-rule-942100').innerText();
    assert.match(row, /SQL injection/);
    assert.match(row, /shop/);
    assert.match(row, /blocked/);
    // The Ingress controller's report each gateway mounts: what was not translated first.
    await id('translation-row-1').waitFor({ timeout: 5000 });
    assert.match(await id('translation').innerText(), /4 Ingress\(es\) and 1 Gateway API route\(s\); 1 setting\(s\) not translated/);
    assert.match(await id('translation-row-0').innerText(), /not translated\s+chat\/chat\s+configuration-snippet/);
    assert.match(await id('translation-row-1').innerText(), /differs\s+chat\/chat-canary\s+canary-by-cookie/);
    await page.waitForFunction(() => !/^\s*0\.0\s*$/.test(document.querySelector('[data-testid="fleet-row-gw-1"] td:nth-child(5)')?.innerText || '0.0'), null, { timeout: 5000 }).catch(() => {});
    await shot('fleet');
  });

  step('create a route through the form; the gateway serves it within 2 s', async () => {
    await id('nav-routes').click();
    await id('route-new').click();
    await id('route-form').waitFor();
    await id('field-name').fill('hello');
    await id('field-path').fill('/hello/');
    await id('field-service').selectOption('chat');
    await id('field-methods-GET').check();
    await shot('route-form');
    const saved = Date.now();
    await id('route-save').click();
    await id('notice').waitFor();
    const served = await eventually(2000, async () => (await get(port, '/hello/x'))[0] === 200, 'new route served');
    console.log(`  route saved → served by the gateway in ${served - saved} ms`);
    await id('route-row-hello').waitFor();
    await shot('routes');
  });

  step('an invalid value shows an inline error; nothing is saved; the gateway is unchanged', async () => {
    const before = fileText();
    await id('route-edit-hello').click();
    await id('route-form').waitFor();
    await id('field-path').fill('no-slash');
    await id('route-save').click();
    await id('error-path').waitFor();
    const message = await id('error-path').textContent();
    assert.match(message, /must start with/);
    await shot('route-error');
    assert.equal(fileText(), before, 'the file changed');
    assert.equal((await get(port, '/hello/x'))[0], 200);
  });

  step('move the blue/green split from 100/0 to 50/50; traffic follows (±5 % over 1 000)', async () => {
    let blue = 0;
    for (let i = 0; i < 100; i++) if ((await get(port, '/chat/x'))[1] === 'blue') blue++;
    assert.equal(blue, 100, 'before: all blue');
    await id('nav-bluegreen').click();
    await id('split-chat').fill('50');
    await id('split-apply-chat').click();
    await id('notice').waitFor();
    await eventually(2000, async () => (await get(port, '/chat/x'))[1] === 'green', 'green gets traffic');
    let green = 0;
    for (let i = 0; i < 1000; i++) if ((await get(port, '/chat/x'))[1] === 'green') green++;
    console.log(`  50/50 split: green ${green} of 1000`);
    assert.ok(green >= 450 && green <= 550, `green ${green} of 1000`);
    // The page shows the live shares measured by the gateways (per-subset counters).
    let traffic = true;
    const load = (async () => { while (traffic) await get(port, '/chat/x'); })();
    try {
      await page.waitForFunction(() => {
        const text = document.querySelector('[data-testid="split-live-chat"]')?.textContent || '';
        // Series exist at 0 from the start; wait for a scrape that has seen the new split.
        return /stage=green [1-9]\d* %/.test(text) && /stage=blue \d+ %/.test(text);
      }, null, { timeout: 10000 });
      const live = await id('split-live-chat').textContent();
      const share = Number(/stage=green (\d+) %/.exec(live)[1]);
      console.log(`  live share shown: ${live.trim()}`);
      assert.ok(share >= 40 && share <= 60, `live green share ${share} %`);
      await shot('bluegreen');
    } finally {
      traffic = false;
      await load;
    }
  });

  step("change a tenant's limit; the gateway enforces it", async () => {
    await id('nav-consumers').click();
    await id('limit-tenant-limit-base-0-count').fill('3');
    await id('limit-save-tenant-limit').click();
    await id('notice').waitFor();
    await eventually(3000, async () => {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await get(port, '/api/x', { 'x-api-key': 'k-alice-e2e-1' }))[0]);
      return statuses.includes(429);
    }, 'limit of 3 enforced');
    await shot('consumers');
  });

  step('roll back to the first version; the gateway serves the original routes', async () => {
    await id('nav-history').click();
    await id('history-row-1').waitFor();
    await shot('history');
    await id('history-row-1').click();
    await id('history-restore-1').click();
    await id('notice').waitFor();
    await eventually(2000, async () => (await get(port, '/hello/x'))[0] === 404, 'hello route gone');
    let blue = 0;
    for (let i = 0; i < 100; i++) if ((await get(port, '/chat/x'))[1] === 'blue') blue++;
    assert.equal(blue, 100, 'split back to all blue');
  });

  step('add a plugin through the plugin editor', async () => {
    await id('nav-plugins').click();
    await id('plugin-new').click();
    await id('plugin-form').waitFor();
    await id('plugin-field-name').fill('waf');
    await id('plugin-field-type').selectOption('waf');
    await id('plugin-field-config').fill('{ "mode": "detect" }');
    await shot('plugin-form');
    await id('plugin-save').click();
    await id('notice').waitFor();
    await eventually(2000, async () => /\[plugins\.waf\][^[]*mode = "detect"/.test(fileText()), 'plugin written');
  });

  step('Simplified Chinese', async () => {
    await id('nav-fleet').click();
    await id('lang-toggle').click();
    await page.waitForFunction(() => /[\u4e00-\u9fff]/.test(document.body.innerText));
    await sleep(600);
    await shot('fleet-zh');
    await id('lang-toggle').click();
  });

  step('a viewer cannot change anything (UI and API)', async () => {
    const viewerContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const v = await viewerContext.newPage();
    await v.goto(base + '/');
    await v.getByTestId('login-user').fill('vic');
    await v.getByTestId('login-password').fill('vic-e2e-pw');
    await v.getByTestId('login-submit').click();
    await v.getByTestId('readonly-badge').waitFor();
    await v.getByTestId('nav-routes').click();
    await v.getByTestId('route-row-chat').waitFor();
    assert.equal(await v.getByTestId('route-new').count(), 0, 'viewer sees a New button');
    const editable = await v.getByTestId('route-delete-chat').count();
    if (editable) assert.ok(await v.getByTestId('route-delete-chat').isDisabled(), 'viewer can delete');
    // The API refuses too, even with the session's CSRF token.
    const answer = await v.evaluate(async () => {
      const me = await (await fetch('/api/me')).json();
      const r = await fetch('/api/routes/chat', { method: 'DELETE', headers: { 'x-csrf-token': me.csrf } });
      return r.status;
    });
    assert.equal(answer, 403);
    await viewerContext.close();
  });

  step('delete a route; the gateway stops serving it', async () => {
    await id('nav-routes').click();
    await id('route-delete-api').click();
    await id('notice').waitFor();
    await eventually(2000, async () => (await get(port, '/api/x', { 'x-api-key': 'k-alice-e2e-1' }))[0] === 404, 'route gone');
    assert.equal(await id('route-row-api').count(), 0);
  });

  for (const [name, fn] of steps) {
    try {
      await fn();
      console.log(`ok   ${name}`);
    } catch (e) {
      failed = true;
      console.log(`FAIL ${name}\n     ${e.stack || e}`);
      const where = path.join(os.tmpdir(), `tidegate-e2e-failure-${Date.now()}.png`);
      await page.screenshot({ path: where, fullPage: true }).catch(() => {});
      console.log(`     screenshot: ${where}`);
      break;
    }
  }
  await browser.close();
}

try {
  await main();
} catch (e) {
  failed = true;
  console.log(`FAIL setup: ${e.stack || e}`);
} finally {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) s.close();
  keepAlive.destroy();
  if (failed) {
    for (const log of ['gateway.log', 'console.log']) {
      const p = path.join(work, log);
      if (fs.existsSync(p)) console.log(`--- ${log}\n${fs.readFileSync(p, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}
