/**
 * The status page's HTML, CSS and script, served as they are written here (no
 * build step, nothing fetched from elsewhere). The script reads /stats.json
 * every second; every figure it shows is a field of that JSON, named in the
 * element's data-stat attribute. docs/status-page.md describes the page.
 */

import { pageStart, pageTheme } from '../page-files';

export const STATUS_HTML = String.raw`${pageStart('strands status', '/status.css', '/status.js')}<body>
<header>
  <h1>strands</h1>
  <span id="state" class="badge">loading…</span>
  <span class="muted">v<span id="version">?</span> · up <span id="uptime">?</span></span>
</header>
<main>
  <section>
    <h2>Connections</h2>
    <dl>
      <dt>open</dt><dd data-stat="connections.open">–</dd>
      <dt>opened</dt><dd data-stat="connections.opened">–</dd>
      <dt>upgrades waiting</dt><dd data-stat="connections.waiting">–</dd>
      <dt>upgrades refused</dt><dd data-stat="connections.refused">–</dd>
    </dl>
  </section>
  <section>
    <h2>Messages per second</h2>
    <figure>
      <figcaption>in: <span data-rate="in" data-at="now">–</span>/s now, peak <span data-rate="in" data-at="peak">–</span>/s · <span data-stat="messages.in">–</span> in all</figcaption>
      <svg id="chart-in" class="chart" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" aria-label="messages in per second, last five minutes"><polyline points=""/></svg>
    </figure>
    <figure>
      <figcaption>out: <span data-rate="out" data-at="now">–</span>/s now, peak <span data-rate="out" data-at="peak">–</span>/s · <span data-stat="messages.out">–</span> in all</figcaption>
      <svg id="chart-out" class="chart" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" aria-label="messages out per second, last five minutes"><polyline points=""/></svg>
    </figure>
    <p class="muted">In: client messages and backend actions. Out: events to backends. Last five minutes.</p>
  </section>
  <section>
    <h2>Rooms</h2>
    <dl>
      <dt>rooms</dt><dd data-stat="rooms.count">–</dd>
    </dl>
    <ol id="largest-rooms" hidden></ol>
    <p id="rooms-hidden" class="muted" hidden>Room names are not shown: start the broker with --status-page-rooms to list the largest rooms.</p>
  </section>
  <section>
    <h2>Backends</h2>
    <dl>
      <dt>connected</dt><dd data-stat="backends.connected">–</dd>
      <dt>authenticating</dt><dd data-stat="backends.authenticating">–</dd>
      <dt>dropped (too slow)</dt><dd data-stat="backends.dropped">–</dd>
    </dl>
    <table>
      <thead><tr><th>backend</th><th>state</th><th>owed</th><th>events held</th></tr></thead>
      <tbody id="backend-links"></tbody>
    </table>
  </section>
  <section>
    <h2>Queue</h2>
    <dl>
      <dt>events</dt><dd><span data-stat="queue.depth">–</span> of <span data-stat="queue.maxEvents">–</span></dd>
      <dt>bytes</dt><dd><span data-stat="queue.bytes" data-format="bytes">–</span> of <span data-stat="queue.maxBytes" data-format="bytes">–</span></dd>
      <dt>dropped</dt><dd data-stat="queue.dropped">–</dd>
    </dl>
  </section>
  <section>
    <h2>Errors</h2>
    <table>
      <thead><tr><th>kind</th><th>count</th></tr></thead>
      <tbody id="errors"></tbody>
    </table>
  </section>
  <section>
    <h2>Cluster</h2>
    <p id="single-node">single node</p>
    <table id="cluster-nodes" hidden>
      <thead><tr><th>node</th><th>version</th><th>backends</th><th>last seen</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<footer class="muted">Updated <span id="updated">never</span> · <a href="/stats.json">/stats.json</a> · <a href="/metrics">/metrics</a></footer>
</body>
</html>
`;

export const STATUS_CSS = String.raw`${pageTheme({ light: '--chart: #0969da;', dark: '--chart: #58a6ff;' })}body { margin: 0; font: 15px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1rem; padding: .75rem 1rem; }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(18rem, 1fr)); gap: .75rem; padding: 0 1rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; min-width: 0; }
dl { display: grid; grid-template-columns: 1fr auto; gap: .15rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
table { width: 100%; border-collapse: collapse; margin-top: .5rem; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .2rem .3rem; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: normal; }
td:first-child { overflow-wrap: anywhere; }
td:nth-child(n+2), th:nth-child(n+2) { text-align: right; white-space: nowrap; }
ol { margin: .5rem 0 0; padding-left: 1.5rem; }
ol li { overflow-wrap: anywhere; }
figure { margin: 0 0 .75rem; }
figcaption { font-variant-numeric: tabular-nums; }
.chart { display: block; width: 100%; height: 4rem; border-bottom: 1px solid var(--line); }
.chart polyline { fill: none; stroke: var(--chart); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.muted { color: var(--muted); }
.badge { border-radius: 1rem; padding: .05rem .6rem; font-size: .85rem; border: 1px solid currentColor; }
.ok { color: var(--ok); }
.warn { color: var(--warn); }
.bad { color: var(--bad); }
footer { padding: 1rem; }
a { color: inherit; }
`;

export const STATUS_JS = String.raw`// The status page: reads /stats.json every second and shows it.
const REFRESH_MS = 1000;
const byId = (id) => document.getElementById(id);

const count = (n) => n.toLocaleString('en-US', { maximumFractionDigits: 1 });
function bytes(n) {
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return value.toFixed(1) + ' ' + units[unit];
}
function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}
const STATE_TEXT = { ready: 'ready', backed_up: 'backed up', closed: 'closing' };
const STATE_CLASS = { ready: 'ok', backed_up: 'warn', closed: 'bad' };

function valueAt(snapshot, path) {
  return path.split('.').reduce((value, key) => (value === null || value === undefined ? undefined : value[key]), snapshot);
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function row(...cells) {
  const tr = document.createElement('tr');
  tr.append(...cells);
  return tr;
}

function setBadge(text, className) {
  const badge = byId('state');
  badge.textContent = text;
  badge.className = 'badge ' + className;
}

function showFigures(snapshot) {
  for (const el of document.querySelectorAll('[data-stat]')) {
    const value = valueAt(snapshot, el.dataset.stat);
    el.textContent = typeof value !== 'number' ? '–' : el.dataset.format === 'bytes' ? bytes(value) : count(value);
  }
}

function showRates(rates) {
  for (const direction of ['in', 'out']) {
    const series = rates[direction];
    const peak = Math.max(0, ...series);
    const figures = { now: series.length > 0 ? series[series.length - 1] : 0, peak };
    for (const el of document.querySelectorAll('[data-rate="' + direction + '"]')) el.textContent = count(figures[el.dataset.at]);
    // Right-aligned: the newest sample at the right edge, one step per sample of the five minutes.
    const step = 300 / Math.max(1, rates.capacity - 1);
    const start = 300 - step * (series.length - 1);
    const points = series.map((value, i) => (start + i * step).toFixed(1) + ',' + (58 - (value / Math.max(peak, 1)) * 56).toFixed(1));
    byId('chart-' + direction).querySelector('polyline').setAttribute('points', points.join(' '));
  }
}

function showRooms(rooms) {
  const list = byId('largest-rooms');
  byId('rooms-hidden').hidden = rooms.largest !== undefined;
  list.hidden = rooms.largest === undefined;
  list.replaceChildren(
    ...(rooms.largest || []).map((room) => {
      const li = document.createElement('li');
      const members = document.createElement('span');
      members.className = 'muted';
      members.textContent = ' · ' + count(room.members) + (room.members === 1 ? ' member' : ' members');
      const name = document.createElement('span');
      name.className = 'room';
      name.textContent = room.room;
      li.append(name, members);
      return li;
    }),
  );
}

function showBackends(backends) {
  const body = byId('backend-links');
  if (backends.links.length === 0) {
    body.replaceChildren(row(Object.assign(cell('no backend connected: new clients get 503', 'bad'), { colSpan: 4 })));
    return;
  }
  body.replaceChildren(
    ...backends.links.map((link) => row(cell(link.remote), cell(STATE_TEXT[link.state] || link.state, STATE_CLASS[link.state]), cell(bytes(link.owedBytes)), cell(count(link.heldEvents)))),
  );
}

function showErrors(errors) {
  const kinds = Object.keys(errors).filter((kind) => errors[kind] > 0);
  const body = byId('errors');
  if (kinds.length === 0) body.replaceChildren(row(Object.assign(cell('none', 'muted'), { colSpan: 2 })));
  else body.replaceChildren(...kinds.map((kind) => row(cell(kind), cell(count(errors[kind])))));
}

function showCluster(cluster) {
  const table = byId('cluster-nodes');
  byId('single-node').hidden = cluster !== null;
  table.hidden = cluster === null;
  if (cluster === null) return;
  table.tBodies[0].replaceChildren(
    ...cluster.nodes.map((node) => row(cell(node.id), cell(node.version), cell(count(node.backends)), cell(duration(node.lastSeenMs) + ' ago'))),
  );
}

function show(snapshot) {
  showFigures(snapshot);
  showRates(snapshot.rates);
  showRooms(snapshot.rooms);
  showBackends(snapshot.backends);
  showErrors(snapshot.errors);
  showCluster(snapshot.cluster);
  byId('version').textContent = snapshot.node.version;
  byId('uptime').textContent = duration(snapshot.node.uptimeMs);
  byId('updated').textContent = new Date(snapshot.time).toLocaleTimeString();
  if (snapshot.node.ready) setBadge('live', 'ok');
  else setBadge('not ready', 'warn');
  // For a reader that needs to know which read the page shows (the tests).
  document.body.dataset.time = String(snapshot.time);
}

async function refresh() {
  try {
    const response = await fetch('/stats.json', { cache: 'no-store', signal: AbortSignal.timeout(3 * REFRESH_MS) });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    show(await response.json());
  } catch {
    setBadge('unreachable: retrying', 'bad');
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
`;
