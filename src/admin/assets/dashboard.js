// gatehouse's live dashboard. Reads GET /events on the admin listener (one JSON summary a second,
// docs/admin.md) and draws it: tiles, tables and rolling charts of the last 120 s.
//
// Plain browser JavaScript with no framework and no dependency: the charts are the small SVG
// LineChart below, so building the gatehouse binary (which embeds this file) needs no npm.
// Nothing here is inline in the page: the admin listener sends
// Content-Security-Policy: default-src 'self'. Text from the gateway is only ever set with
// textContent, never parsed as HTML.
//
// The admin token is kept in sessionStorage (this tab only; never localStorage, never a cookie).
// EventSource cannot send an Authorization header, so the stream is read with fetch() and a
// ReadableStream, parsed as Server-Sent Events here.
'use strict';

(() => {
  const TOKEN_KEY = 'gatehouse.admin.token';
  const WINDOW_MS = 120 * 1000;  // what the charts show
  const STALL_MS = 5000;         // no summary for this long: the stream counts as dropped
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  // ---- formatting --------------------------------------------------------------------------

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const fmtRate = (v) => (isNum(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–');
  const fmtMs = (v) => (isNum(v) ? (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) : '–');
  const fmtPct = (v) => (isNum(v) ? (v * 100).toFixed(1) + ' %' : '–');
  const fmtCount = (v) => (isNum(v) ? String(Math.round(v)) : '–');
  const FORMAT = {rps: fmtRate, ms: fmtMs, percent: (v) => (isNum(v) ? v.toFixed(1) + ' %' : '–'), count: fmtCount};

  // Sets an element's text and its raw value (data-value, what a test or a script reads).
  function setValue(el, value, format) {
    el.textContent = format(value);
    el.dataset.value = isNum(value) ? String(value) : '';
  }

  // ---- the chart ---------------------------------------------------------------------------

  // Stable colours: one per series name across every chart ("total" has its own).
  const colours = new Map();
  function colourClass(name) {
    if (name === 'total') return 'c-total';
    if (!colours.has(name)) colours.set(name, colours.size % 8);
    return 'c' + colours.get(name);
  }

  // A step of 1, 2 or 5 times a power of ten that splits [0, max] into about four.
  function niceStep(max) {
    const raw = max / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  function svg(tag, attrs, parent) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (parent) parent.appendChild(el);
    return el;
  }

  // A line chart over a time window: draw(series, t0, t1) with series [{name, points: [[t, v]]}]
  // (t in ms, v a number or null for "no value": the line breaks there, and where two points
  // are more than 3 s apart, as after a reconnect).
  class LineChart {
    constructor(figure) {
      this.figure = figure;
      this.format = FORMAT[figure.dataset.unit] || fmtRate;
      this.width = 480;
      this.height = 170;
      this.margin = {left: 46, right: 10, top: 10, bottom: 22};
      this.svg = svg('svg', {viewBox: `0 0 ${this.width} ${this.height}`, role: 'img'}, null);
      this.legend = document.createElement('ul');
      this.legend.className = 'legend';
      figure.appendChild(this.svg);
      figure.appendChild(this.legend);
    }

    draw(series, t0, t1) {
      const {left, right, top, bottom} = this.margin;
      const w = this.width - left - right;
      const h = this.height - top - bottom;
      let max = 0;
      for (const s of series) for (const [, v] of s.points) if (isNum(v) && v > max) max = v;
      const step = niceStep(max > 0 ? max : 1);
      const ymax = Math.max(step, Math.ceil(max / step) * step);
      const decimals = step >= 1 ? 0 : Math.ceil(-Math.log10(step));
      const x = (t) => left + ((t - t0) / (t1 - t0)) * w;
      const y = (v) => top + h - (v / ymax) * h;

      this.svg.replaceChildren();
      const grid = svg('g', {class: 'grid'}, this.svg);
      for (let v = 0; v <= ymax + step / 2; v += step) {
        svg('line', {x1: left, x2: left + w, y1: y(v), y2: y(v)}, grid);
        const label = svg('text', {x: left - 6, y: y(v) + 4, class: 'y-label'}, grid);
        label.textContent = v.toFixed(decimals) + (this.figure.dataset.unit === 'percent' ? '%' : '');
      }
      for (const [frac, text] of [[0, '−120 s'], [0.5, '−60 s'], [1, 'now']]) {
        const label = svg('text', {x: left + frac * w, y: this.height - 6, class: 'x-label x' + frac * 2}, grid);
        label.textContent = text;
      }

      const legendItems = [];
      for (const s of series) {
        let d = '';
        let prevT = null;
        let last = null;
        let drawn = 0;
        for (const [t, v] of s.points) {
          if (!isNum(v) || t < t0) {
            prevT = null;
            continue;
          }
          const cmd = prevT === null || t - prevT > 3000 ? 'M' : 'L';
          d += `${cmd}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
          prevT = t;
          last = [t, v];
          drawn++;
        }
        const cls = colourClass(s.name);
        const path = svg('path', {d: d || 'M0,0', class: 'line ' + cls}, this.svg);
        path.dataset.series = s.name;
        path.dataset.points = String(drawn);
        if (last) svg('circle', {cx: x(last[0]), cy: y(last[1]), r: 2.5, class: 'dot ' + cls}, this.svg);

        const li = document.createElement('li');
        li.dataset.series = s.name;
        const swatch = document.createElement('span');
        swatch.className = 'swatch ' + cls;
        const name = document.createElement('span');
        name.textContent = s.name;
        const value = document.createElement('span');
        value.className = 'legend-value';
        const current = s.points.length ? s.points[s.points.length - 1][1] : null;
        setValue(value, current, this.format);
        li.append(swatch, name, value);
        legendItems.push(li);
      }
      if (!series.length) {
        const none = svg('text', {x: left + w / 2, y: top + h / 2, class: 'none'}, this.svg);
        none.textContent = this.figure.dataset.none || 'nothing to show';
      }
      this.legend.replaceChildren(...legendItems);
      this.svg.dataset.series = String(series.length);
    }
  }

  // ---- the summaries kept for the charts ---------------------------------------------------

  let history = [];           // [{t, s}] oldest first, the last WINDOW_MS
  let groupBy = 'route';      // the charts' series: per route or per service
  let charts = null;

  function remember(summary) {
    let t = Date.parse(summary.time);
    if (!Number.isFinite(t)) t = Date.now();
    if (history.length && t < history[history.length - 1].t) history = [];  // the clock went back
    history.push({t, s: summary});
    while (history.length && history[0].t < t - WINDOW_MS) history.shift();
  }

  // Series by name, in order of first appearance: itemsOf(summary) gives [name, value] pairs.
  function collect(itemsOf) {
    const byName = new Map();
    for (const {t, s} of history) {
      for (const [name, v] of itemsOf(s)) {
        if (!byName.has(name)) byName.set(name, []);
        byName.get(name).push([t, isNum(v) ? v : null]);
      }
    }
    return [...byName].map(([name, points]) => ({name, points}));
  }

  // "total" and one series per route (or service) of a field of the summary, times scale. With
  // many routes, only the MAX_LINES busiest of the latest second get a line (the tables list all).
  const MAX_LINES = 8;
  const groups = (s) => (groupBy === 'service' ? s.services : s.routes) || [];
  function busiest() {
    const latest = groups(history[history.length - 1].s);
    if (latest.length <= MAX_LINES) return null;
    const ranked = latest.map((g, i) => [g.name, isNum(g.rps) ? g.rps : 0, i]);
    ranked.sort((a, b) => b[1] - a[1] || a[2] - b[2]);
    return new Set(ranked.slice(0, MAX_LINES).map(([name]) => name));
  }
  const perGroup = (field, scale = 1, shown = busiest()) =>
    collect((s) => [['total', s.totals && s.totals[field]],
                    ...groups(s).filter((g) => !shown || shown.has(g.name)).map((g) => [g.name, g[field]])]
      .map(([name, v]) => [name, isNum(v) ? v * scale : null]));

  function drawCharts() {
    if (!charts || !history.length) return;
    const t1 = history[history.length - 1].t;
    const t0 = t1 - WINDOW_MS;
    charts.rps.draw(perGroup('rps'), t0, t1);
    charts.p50.draw(perGroup('p50_ms'), t0, t1);
    charts.p99.draw(perGroup('p99_ms'), t0, t1);
    charts.e4.draw(perGroup('error_rate_4xx', 100), t0, t1);
    charts.e5.draw(perGroup('error_rate_5xx', 100), t0, t1);
    charts.rejections.draw(collect((s) => Object.entries(s.rate_limit_rejections || {})), t0, t1);
    charts.auth.draw(collect((s) => Object.entries(s.auth_failures || {})), t0, t1);
    charts.connections.draw(collect((s) => [['connections', s.connections_open],
                                            ['websocket tunnels', s.websocket_tunnels_open]]), t0, t1);
  }

  // ---- tables ------------------------------------------------------------------------------

  // Keeps one row per key in a table body, in the order given: existing rows are updated in
  // place, rows whose key went away (a reload removed the route) are removed.
  function syncRows(tbody, attr, items, keyOf, cells, fill) {
    const old = new Map();
    for (const tr of tbody.querySelectorAll('tr[data-' + attr + ']')) old.set(tr.getAttribute('data-' + attr), tr);
    const rows = [];
    for (const item of items) {
      const key = keyOf(item);
      let tr = old.get(key);
      old.delete(key);
      if (!tr) {
        tr = document.createElement('tr');
        tr.setAttribute('data-' + attr, key);
        for (const [field, numeric] of cells) {
          const td = document.createElement('td');
          td.dataset.field = field;
          if (numeric) td.className = 'num';
          tr.appendChild(td);
        }
      }
      fill(tr, item, (field) => tr.querySelector(`td[data-field="${field}"]`));
      rows.push(tr);
    }
    if (!rows.length) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = document.createElement('td');
      td.colSpan = cells.length;
      td.textContent = 'none';
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
  }

  const TRAFFIC_CELLS = [['rps', true], ['p50', true], ['p99', true], ['4xx', true], ['5xx', true]];
  function fillTraffic(cell, item) {
    setValue(cell('rps'), item.rps, fmtRate);
    setValue(cell('p50'), item.p50_ms, fmtMs);
    setValue(cell('p99'), item.p99_ms, fmtMs);
    setValue(cell('4xx'), item.error_rate_4xx, fmtPct);
    setValue(cell('5xx'), item.error_rate_5xx, fmtPct);
    cell('4xx').classList.toggle('warn', isNum(item.error_rate_4xx) && item.error_rate_4xx > 0);
    cell('5xx').classList.toggle('bad', isNum(item.error_rate_5xx) && item.error_rate_5xx > 0);
  }

  function drawTables(s) {
    syncRows($('routes').tBodies[0], 'route', s.routes || [], (r) => r.name,
             [['name', false], ['service', false], ...TRAFFIC_CELLS], (tr, r, cell) => {
               cell('name').textContent = r.name;
               cell('service').textContent = r.service || '';
               fillTraffic(cell, r);
             });

    syncRows($('services').tBodies[0], 'service', s.services || [], (v) => v.name,
             [['name', false], ['healthy', true], ...TRAFFIC_CELLS], (tr, v, cell) => {
               cell('name').textContent = v.name;
               const healthy = cell('healthy');
               healthy.textContent = `${fmtCount(v.healthy)} / ${fmtCount(v.total)}`;
               healthy.dataset.healthy = String(v.healthy);
               healthy.dataset.total = String(v.total);
               healthy.classList.toggle('bad', v.healthy === 0 && v.total > 0);
               healthy.classList.toggle('warn', v.healthy > 0 && v.healthy < v.total);
               fillTraffic(cell, v);
             });

    const instances = [];
    for (const v of s.services || []) for (const i of v.instances || []) instances.push({service: v.name, ...i});
    syncRows($('instances').tBodies[0], 'instance', instances, (i) => i.service + ' ' + i.url,
             [['service', false], ['url', false], ['source', false], ['health', false], ['in-flight', true]],
             (tr, i, cell) => {
               tr.dataset.service = i.service;
               tr.dataset.url = i.url;
               tr.dataset.healthy = String(i.healthy === true);
               cell('service').textContent = i.service;
               cell('url').textContent = i.url;
               cell('source').textContent = i.source || '';
               const health = cell('health');
               health.textContent = i.healthy ? 'healthy' : 'unhealthy';
               health.className = i.healthy ? 'ok' : 'bad';
               setValue(cell('in-flight'), i.in_flight, fmtCount);
             });

    const policies = [
      ...Object.entries(s.rate_limit_rejections || {}).map(([name, rate]) => ({name, kind: 'rate_limit', rate})),
      ...Object.entries(s.auth_failures || {}).map(([name, rate]) => ({name, kind: 'auth', rate})),
    ];
    syncRows($('policies').tBodies[0], 'policy', policies, (p) => p.kind + ' ' + p.name,
             [['name', false], ['kind', false], ['rate', true]], (tr, p, cell) => {
               tr.dataset.name = p.name;
               tr.dataset.kind = p.kind;
               cell('name').textContent = p.name;
               cell('kind').textContent = p.kind === 'auth' ? 'authentication failures' : 'rate-limit rejections';
               setValue(cell('rate'), p.rate, fmtRate);
               cell('rate').classList.toggle('warn', isNum(p.rate) && p.rate > 0);
             });
  }

  function drawSummary(s) {
    const totals = s.totals || {};
    setValue($('total-rps'), totals.rps, fmtRate);
    setValue($('total-p50'), totals.p50_ms, (v) => (isNum(v) ? fmtMs(v) + ' ms' : '–'));
    setValue($('total-p99'), totals.p99_ms, (v) => (isNum(v) ? fmtMs(v) + ' ms' : '–'));
    setValue($('total-4xx'), totals.error_rate_4xx, fmtPct);
    setValue($('total-5xx'), totals.error_rate_5xx, fmtPct);
    setValue($('connections-open'), s.connections_open, fmtCount);
    setValue($('websocket-tunnels'), s.websocket_tunnels_open, fmtCount);
    $('generation').textContent = s.generation === undefined ? '–' : String(s.generation);
    const t = new Date(Date.parse(s.time));
    const updated = $('updated');
    updated.textContent = Number.isNaN(t.getTime()) ? String(s.time) : t.toLocaleTimeString();
    updated.dateTime = String(s.time);
    $('meta').hidden = false;
    drawTables(s);
    drawCharts();
  }

  // ---- Server-Sent Events over fetch() -----------------------------------------------------

  // Reads an SSE body, calling onData with each event's data (its data: lines joined by "\n").
  // Lines end in \n, \r\n or \r; a line starting with ':' is a comment; fields other than data
  // (event, id, retry) are not used by /events and are ignored.
  async function readEvents(body, onData) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buf += decoder.decode(value, {stream: true});
      for (;;) {
        const end = buf.search(/[\r\n]/);
        if (end < 0) break;
        if (buf[end] === '\r' && end + 1 === buf.length) break;  // maybe the first half of \r\n
        const line = buf.slice(0, end);
        buf = buf.slice(end + (buf[end] === '\r' && buf[end + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (data.length) onData(data.join('\n'));
          data = [];
          continue;
        }
        if (line[0] === ':') continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val[0] === ' ') val = val.slice(1);
        if (field === 'data') data.push(val);
      }
    }
  }

  // ---- connection state --------------------------------------------------------------------

  let controller = null;  // the running stream's AbortController; null when none runs
  let attempt = 0;        // reconnections since the last summary
  let retryTimer = null;
  let stallTimer = null;

  function setStatus(state, text) {
    const el = $('status');
    el.dataset.state = state;
    el.textContent = text;
    $('dashboard').classList.toggle('stale', state !== 'live');
  }

  function stopStream() {
    clearTimeout(retryTimer);
    clearTimeout(stallTimer);
    retryTimer = stallTimer = null;
    if (controller) controller.abort();
    controller = null;
  }

  function showLogin(message) {
    stopStream();
    $('dashboard').hidden = true;
    $('sign-out').hidden = true;
    $('meta').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    setStatus(message ? 'unauthorized' : 'signed-out', message ? 'token refused' : 'signed out');
    $('token').focus();
  }

  function watchStall(ctl) {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => dropped(ctl, `no summary for ${STALL_MS / 1000} s`), STALL_MS);
  }

  // The stream `ctl` ended or failed: show it, and connect again after a growing delay.
  function dropped(ctl, why) {
    if (controller !== ctl) return;  // already replaced, or signed out
    stopStream();
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt++;
    setStatus('disconnected', `disconnected (${why}), retrying in ${Math.round(delay / 1000)} s`);
    retryTimer = setTimeout(connect, delay);
  }

  async function connect() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return showLogin('');
    stopStream();
    const ctl = new AbortController();
    controller = ctl;
    $('login').hidden = true;
    $('dashboard').hidden = false;
    $('sign-out').hidden = false;
    setStatus('connecting', attempt ? `reconnecting (attempt ${attempt + 1})` : 'connecting');
    watchStall(ctl);

    let res;
    try {
      res = await fetch('/events', {
        headers: {Authorization: 'Bearer ' + token, Accept: 'text/event-stream'},
        cache: 'no-store',
        signal: ctl.signal,
      });
    } catch (e) {
      return dropped(ctl, 'cannot reach the admin listener');
    }
    if (controller !== ctl) return;
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin('The gateway refused this token (401 Unauthorized). ' +
                       'Enter the admin token of its config (admin.token).');
    }
    if (!res.ok || !res.body) return dropped(ctl, `GET /events answered ${res.status}`);

    try {
      await readEvents(res.body, (data) => {
        if (controller !== ctl) return;
        let summary;
        try {
          summary = JSON.parse(data);
        } catch (e) {
          console.warn('gatehouse dashboard: an event that is not JSON was skipped', e);
          return;
        }
        attempt = 0;
        watchStall(ctl);
        setStatus('live', 'live');
        remember(summary);
        drawSummary(summary);
      });
      dropped(ctl, 'the stream ended');
    } catch (e) {
      dropped(ctl, 'the stream broke');
    }
  }

  // ---- start -------------------------------------------------------------------------------

  function start() {
    charts = {};
    for (const [key, id] of [['rps', 'chart-rps'], ['p50', 'chart-p50'], ['p99', 'chart-p99'], ['e4', 'chart-4xx'],
                             ['e5', 'chart-5xx'], ['rejections', 'chart-rejections'], ['auth', 'chart-auth'],
                             ['connections', 'chart-connections']]) {
      charts[key] = new LineChart($(id));
    }

    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('token');
      const token = input.value.trim();
      input.value = '';
      if (!token) {
        $('login-error').textContent = 'Enter the admin token.';
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      $('login-error').textContent = '';
      attempt = 0;
      history = [];
      connect();
    });

    $('sign-out').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      history = [];
      showLogin('');
    });

    for (const button of document.querySelectorAll('#group-by button')) {
      button.addEventListener('click', () => {
        groupBy = button.dataset.group;
        for (const b of document.querySelectorAll('#group-by button'))
          b.setAttribute('aria-pressed', String(b === button));
        drawCharts();
      });
    }

    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
