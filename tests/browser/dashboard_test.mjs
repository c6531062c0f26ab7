// The admin dashboard in a real browser: headless Chromium (Debian's `chromium`) opens the page
// served by the real gatehouse binary, is refused with a wrong token, enters the right one, and
// reads from the DOM that live numbers appear and move while traffic goes through the public
// listener (200s, 404s, 429s from a rate_limit policy); then the gateway is killed and started
// again, and the page shows it was disconnected and comes back. Saves a screenshot.
//
//   node dashboard_test.mjs --gatehouse build/release/src/app/gatehouse --out build/release/tests/browser
//
// Needs `scripts/deps.sh` (the chromium package; `npm ci` here for puppeteer-core). Neither
// missing is a skip: the test fails and says what to install. CHROMIUM overrides the browser path.
import {spawn} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const TEST_TIMEOUT_MS = 150_000;

// ---- small helpers ------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Failure extends Error {}
function check(cond, message) {
  if (!cond) throw new Failure(message);
}
function step(text) {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${text}`);
}

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Failure(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  check(out.gatehouse, 'usage: dashboard_test.mjs --gatehouse PATH [--out DIR]');
  out.out = out.out || process.cwd();
  return out;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const sock = net.connect({port, host: '127.0.0.1'});
    sock.setTimeout(500);
    sock.on('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
    sock.on('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

// ---- the upstream service -------------------------------------------------------------------

// /health and every other path: 200; paths ending in /missing: 404 (a 4xx of the route).
function startUpstream() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const missing = req.url.endsWith('/missing');
      const body = JSON.stringify(missing ? {error: 'Not found'} : {ok: true, path: req.url});
      res.writeHead(missing ? 404 : 200, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body)});
      res.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---- the gateway --------------------------------------------------------------------------

class Gateway {
  constructor(binary, dir, config, ports) {
    this.binary = binary;
    this.dir = dir;
    this.ports = ports;
    this.configPath = path.join(dir, 'gatehouse.yaml');
    fs.writeFileSync(this.configPath, config);
    this.proc = null;
    this.runs = 0;
  }

  async start() {
    this.runs++;
    const err = fs.openSync(path.join(this.dir, `stderr.${this.runs}`), 'w');
    const out = fs.openSync(path.join(this.dir, `stdout.${this.runs}`), 'w');
    this.proc = spawn(this.binary, ['run', '-c', this.configPath], {stdio: ['ignore', out, err]});
    fs.closeSync(err);
    fs.closeSync(out);
    this.exit = null;
    this.proc.on('exit', (code, signal) => (this.exit = {code, signal}));
    const deadline = Date.now() + 20_000;
    for (;;) {
      check(!this.exit, `gatehouse exited (${JSON.stringify(this.exit)}) before listening\n${this.diagnostics()}`);
      if ((await accepts(this.ports.public)) && (await accepts(this.ports.admin))) return;
      check(Date.now() < deadline, `gatehouse did not listen on ${this.ports.public} and ${this.ports.admin} in time\n${this.diagnostics()}`);
      await sleep(50);
    }
  }

  async kill() {
    if (!this.proc || this.exit) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }

  diagnostics() {
    let text = `--- config ---\n${fs.readFileSync(this.configPath, 'utf8')}`;
    for (let i = 1; i <= this.runs; i++) {
      const f = path.join(this.dir, `stderr.${i}`);
      let err = fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
      if (err.length > 4000) err = '...' + err.slice(-4000);
      text += `--- gatehouse stderr (run ${i}) ---\n${err}`;
    }
    return text;
  }
}

// ---- traffic through the public listener ----------------------------------------------------

// Sends `perSecond` requests a second until stopped, in a fixed mix: of every 8, five to
// /api/items (200), one to /api/items/missing (the upstream's 404), one to /nowhere (no route:
// the gateway's 404) and one to /api/limited (rate_limit `tight`: 200 five times, then 429).
class Traffic {
  constructor(port) {
    this.port = port;
    this.agent = new http.Agent({keepAlive: true, maxSockets: 16});
    this.codes = {};
    this.errors = 0;
    this.timer = null;
    this.sent = 0;
  }

  static MIX = ['/api/items', '/api/items', '/api/items/missing', '/api/items', '/nowhere', '/api/items',
                '/api/limited', '/api/items'];

  get(pathname) {
    return new Promise((resolve) => {
      const req = http.get({host: '127.0.0.1', port: this.port, path: pathname, agent: this.agent}, (res) => {
        res.resume();
        res.on('end', () => {
          this.codes[res.statusCode] = (this.codes[res.statusCode] || 0) + 1;
          resolve(res.statusCode);
        });
      });
      req.on('error', () => {
        this.errors++;
        resolve(0);
      });
    });
  }

  run(perSecond) {
    this.stop();
    const tickMs = 50;
    let credit = 0;
    this.timer = setInterval(() => {
      credit += (perSecond * tickMs) / 1000;
      for (; credit >= 1; credit--) this.get(Traffic.MIX[this.sent++ % Traffic.MIX.length]);
    }, tickMs);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
}

// ---- the test -----------------------------------------------------------------------------

async function loadPuppeteer() {
  try {
    return (await import('puppeteer-core')).default;
  } catch (e) {
    throw new Failure(`puppeteer-core is not installed in tests/browser: run scripts/deps.sh (npm ci there)\n${e.message}`);
  }
}

function findChromium() {
  const candidates = process.env.CHROMIUM ? [process.env.CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch {}
  }
  throw new Failure(`no Chromium at ${candidates.join(' or ')}: install Debian's chromium package (scripts/deps.sh), ` +
                    'or set CHROMIUM to a Chromium binary');
}

async function main() {
  const opts = args();
  check(fs.existsSync(opts.gatehouse), `no gatehouse binary at ${opts.gatehouse}`);
  const chromium = findChromium();
  const puppeteer = await loadPuppeteer();
  fs.mkdirSync(opts.out, {recursive: true});
  const screenshot = path.join(opts.out, 'dashboard.png');

  const cleanups = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-dashboard-'));
  let gateway = null;
  let page = null;
  try {
    const upstream = await startUpstream();
    cleanups.push(() => new Promise((r) => {
      upstream.closeAllConnections();
      upstream.close(r);
    }));
    const ports = {public: await freePort(), admin: await freePort(), upstream: upstream.address().port};
    const token = crypto.randomBytes(16).toString('hex');
    gateway = new Gateway(opts.gatehouse, dir, `
listen: "127.0.0.1:${ports.public}"
workers: 2
access_log: off
admin: {address: "127.0.0.1:${ports.admin}", token: "${token}"}
services:
  items:
    instances: ["http://127.0.0.1:${ports.upstream}"]
    health_check: {path: /health, interval: 1s}
policies:
  tight: {type: rate_limit, limit: 5, window: 1m}
routes:
  - name: items
    path: /api/items
    service: items
  - name: limited
    path: /api/limited
    service: items
    policies: [tight]
`, ports);
    cleanups.push(() => gateway.kill());
    running.gateway = gateway;
    step(`gatehouse: public 127.0.0.1:${ports.public}, admin 127.0.0.1:${ports.admin}, upstream ${ports.upstream}`);
    await gateway.start();

    // --headless=new: the browser's own headless mode (puppeteer's `headless: true` asks for it
    // too). Chromium run as root refuses to start without --no-sandbox.
    const browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
    });
    cleanups.push(() => browser.close());
    running.browser = browser;
    page = await browser.newPage();
    await page.setViewport({width: 1280, height: 900});
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A refused load (the 401 of a wrong token, /favicon.ico) is logged as an error too; a
      // Content-Security-Policy refusal or a script error is a defect of the page.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
    });

    const admin = `http://127.0.0.1:${ports.admin}`;
    const num = (sel) => page.$eval(sel, (el) => (el.dataset.value === '' ? null : Number(el.dataset.value)));

    step(`open ${admin}/`);
    const res = await page.goto(admin + '/', {waitUntil: 'load'});
    check(res.status() === 200, `GET / answered ${res.status()}`);
    const csp = res.headers()['content-security-policy'] || '';
    check(csp.includes("default-src 'self'"), `GET / has no Content-Security-Policy with default-src 'self' (got "${csp}")`);
    await page.waitForSelector('#token', {visible: true, timeout: 5000});

    step('a wrong token is refused and the form says so');
    await page.type('#token', 'not-' + token);
    await page.click('#token-submit');
    await page.waitForFunction(
        () => document.getElementById('status').dataset.state === 'unauthorized' &&
              document.getElementById('login-error').textContent.includes('refused'),
        {timeout: 10_000});
    check(await page.$eval('#dashboard', (el) => el.hidden), 'the dashboard shows after a refused token');
    check(await page.$eval('#login', (el) => !el.hidden), 'the token form is hidden after a refused token');
    check((await page.evaluate(() => sessionStorage.length)) === 0, 'a refused token is kept in sessionStorage');

    step('the right token: the stream goes live');
    await page.type('#token', token);
    await page.click('#token-submit');
    await page.waitForFunction(() => document.getElementById('status').dataset.state === 'live', {timeout: 10_000});
    check(await page.$eval('#login-error', (el) => el.textContent === ''), 'the error stays after a good token');
    const storage = await page.evaluate(() => ({
      session: Object.values(sessionStorage), local: localStorage.length, cookie: document.cookie}));
    check(storage.session.includes(token), 'the token is not in sessionStorage');
    check(storage.local === 0, 'the page wrote to localStorage');
    check(storage.cookie === '', `the page set a cookie: ${storage.cookie}`);
    check((await page.cookies()).length === 0, 'the admin listener set a cookie');

    step('the service\'s instance shows healthy, the routes and the rate_limit policy have rows');
    await page.waitForSelector('tr[data-instance][data-service="items"][data-healthy="true"]', {timeout: 15_000});
    const instance = await page.$eval('tr[data-instance][data-service="items"]', (tr) => ({
      url: tr.dataset.url, source: tr.querySelector('[data-field="source"]').textContent,
      health: tr.querySelector('[data-field="health"]').textContent}));
    check(instance.url === `http://127.0.0.1:${ports.upstream}`, `instance row url ${instance.url}`);
    check(instance.source === 'static', `instance source "${instance.source}", expected static`);
    check(instance.health === 'healthy', `instance health "${instance.health}"`);
    check(await page.$eval('tr[data-service="items"] [data-field="healthy"]', (td) => td.textContent === '1 / 1'),
          'the services table does not say 1 / 1 healthy');
    await page.waitForSelector('tr[data-route="items"]', {timeout: 5000});
    await page.waitForSelector('tr[data-route="limited"]', {timeout: 5000});
    await page.waitForSelector('tr[data-policy="rate_limit tight"]', {timeout: 5000});
    const quiet = await num('#total-rps');
    check(quiet !== null, 'total-rps has no value');
    check(quiet === 0, `total-rps is ${quiet} before any traffic`);
    check((await num('#connections-open')) !== null, 'connections-open has no value');

    const traffic = new Traffic(ports.public);
    cleanups.push(() => traffic.stop());

    // Readings of the page, one per summary (the page's #updated changes once a second).
    async function readings(count) {
      const out = [];
      let last = await page.$eval('#updated', (el) => el.dateTime);
      while (out.length < count) {
        await page.waitForFunction((prev) => document.getElementById('updated').dateTime !== prev, {timeout: 5000}, last);
        const r = await page.evaluate(() => {
          const v = (el) => (el && el.dataset.value !== '' ? Number(el.dataset.value) : null);
          const cell = (sel, f) => v(document.querySelector(`${sel} [data-field="${f}"]`));
          return {
            time: document.getElementById('updated').dateTime,
            rps: v(document.getElementById('total-rps')),
            p50: v(document.getElementById('total-p50')),
            p99: v(document.getElementById('total-p99')),
            e4: v(document.getElementById('total-4xx')),
            itemsRps: cell('tr[data-route="items"]', 'rps'),
            itemsP50: cell('tr[data-route="items"]', 'p50'),
            itemsP99: cell('tr[data-route="items"]', 'p99'),
            items4xx: cell('tr[data-route="items"]', '4xx'),
            limited4xx: cell('tr[data-route="limited"]', '4xx'),
            serviceRps: cell('tr[data-service="items"]', 'rps'),
            rejections: cell('tr[data-policy="rate_limit tight"]', 'rate'),
            chartPoints: Number(document.querySelector('#chart-rps path[data-series="total"]')?.dataset.points || 0),
          };
        });
        last = r.time;
        out.push(r);
      }
      return out;
    }
    const max = (rs, f) => Math.max(...rs.map((r) => r[f] ?? 0));

    step('light traffic (20 requests/s): the numbers rise from zero');
    traffic.run(20);
    await page.waitForFunction(() => Number(document.getElementById('total-rps').dataset.value) > 0, {timeout: 10_000});
    const light = await readings(4);
    console.log('  light:', JSON.stringify(light.map((r) => r.rps)));
    check(max(light, 'rps') > quiet, 'total-rps did not rise under traffic');
    check(max(light, 'itemsRps') > 0, 'the items route shows no requests per second');
    check(max(light, 'serviceRps') > 0, 'the items service shows no requests per second');
    check(light.some((r) => r.itemsP50 !== null && r.itemsP50 > 0 && r.itemsP99 >= r.itemsP50),
          `the items route has no latency (p50 ${light.map((r) => r.itemsP50)}, p99 ${light.map((r) => r.itemsP99)})`);
    check(light.some((r) => r.p99 !== null && r.p99 >= r.p50), 'the totals have no latency');

    step('heavy traffic (200 requests/s): the readings move with it');
    traffic.run(200);
    await sleep(1500);  // let a whole interval at the new rate pass
    const heavy = await readings(4);
    console.log('  heavy:', JSON.stringify(heavy.map((r) => r.rps)));
    check(max(heavy, 'rps') > 2 * max(light, 'rps'),
          `total-rps under 200 req/s (${heavy.map((r) => r.rps)}) is not above twice that under 20 (${light.map((r) => r.rps)})`);
    check(new Set([...light, ...heavy].map((r) => r.rps)).size > 1, 'total-rps never changed');
    check(max(heavy, 'items4xx') > 0, 'the items route shows no 4xx (its upstream answers 404 to /missing)');
    check(max(heavy, 'limited4xx') > 0, 'the limited route shows no 4xx (429s of its rate_limit policy)');
    check(max(heavy, 'e4') > 0, 'the totals show no 4xx');
    check(max(heavy, 'rejections') > 0, 'the tight policy shows no rate-limit rejections');
    check(heavy[heavy.length - 1].chartPoints > light[0].chartPoints,
          `the requests-per-second chart did not grow (${light[0].chartPoints} -> ${heavy[heavy.length - 1].chartPoints} points)`);
    check(traffic.codes[200] > 0 && traffic.codes[404] > 0 && traffic.codes[429] > 0,
          `the traffic did not get 200, 404 and 429: ${JSON.stringify(traffic.codes)}`);

    await page.screenshot({path: screenshot, fullPage: true});
    step(`screenshot: ${screenshot}`);

    step('traffic stops: requests per second fall back to zero');
    traffic.stop();
    await page.waitForFunction(() => Number(document.getElementById('total-rps').dataset.value) === 0, {timeout: 10_000});

    step('the gateway dies: the page says it is disconnected, then reconnects to the new one');
    await gateway.kill();
    const status = await (await page.waitForFunction(() => {
      const el = document.getElementById('status');
      return el.dataset.state === 'disconnected' && el.textContent;
    }, {timeout: 10_000})).jsonValue();
    check(/retrying in \d+ s/.test(status), `the disconnected status does not say when it retries: "${status}"`);
    check(await page.$eval('#dashboard', (el) => !el.hidden && el.classList.contains('stale')),
          'the figures are not kept (dimmed) while disconnected');
    await sleep(2500);  // a failed attempt or two while it is down: the backoff grows
    await gateway.start();
    await page.waitForFunction(() => document.getElementById('status').dataset.state === 'live', {timeout: 40_000});
    check(await page.$eval('#dashboard', (el) => !el.classList.contains('stale')), 'still dimmed after reconnecting');

    check(problems.length === 0, `the page logged errors:\n${problems.join('\n')}`);
    step(`PASS (traffic answered ${JSON.stringify(traffic.codes)}, ${traffic.errors} errors)`);
  } catch (e) {
    if (page) {
      const failed = path.join(opts.out, 'dashboard-failure.png');
      await page.screenshot({path: failed, fullPage: true}).then(() => console.error(`failure screenshot: ${failed}`), () => {});
    }
    if (gateway && e instanceof Failure && !e.message.includes('--- config ---')) e.message += '\n' + gateway.diagnostics();
    throw e;
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => {});
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

// What a timeout must not leave running.
const running = {gateway: null, browser: null};

const timer = setTimeout(() => {
  console.error(`FAIL: the test did not finish in ${TEST_TIMEOUT_MS / 1000} s`);
  if (running.gateway) {
    running.gateway.proc?.kill('SIGKILL');
    console.error(running.gateway.diagnostics());
  }
  running.browser?.process()?.kill('SIGKILL');
  process.exit(1);
}, TEST_TIMEOUT_MS);
timer.unref();

main().then(() => process.exit(0), (e) => {
  console.error(`FAIL: ${e instanceof Failure ? e.message : e.stack || e}`);
  process.exit(1);
});
