/**
 * The demo's chat page: HTML, CSS and a module script served as written here
 * (no build step, nothing fetched from elsewhere). The script uses the browser
 * client (/strands-client.js, the package's dist/browser/strands-client.js).
 * The HTML names the broker's WebSocket port.
 */
import { pageStart, pageTheme } from '../page-files';
import { MAX_NAME, MAX_ROOM, MAX_TEXT } from './chat-backend';

export const chatHtml = (wsPort: number): string => String.raw`${pageStart('strands demo', '/chat.css', '/chat.js', `<meta name="strands-ws-port" content="${wsPort}">`)}<body>
<header>
  <h1><span class="muted">#</span><span id="room"></span></h1>
  <span id="members" class="muted"></span>
  <span id="status" data-state="connecting">connecting…</span>
</header>
<ul id="log" aria-live="polite"></ul>
<footer>
  <form id="send">
    <input id="text" autocomplete="off" maxlength="${MAX_TEXT}" placeholder="Say something" aria-label="message">
    <button>Send</button>
  </form>
  <form id="settings">
    <label>name <input id="name" maxlength="${MAX_NAME}" autocomplete="nickname"></label>
    <label>room <input id="other-room" maxlength="${MAX_ROOM}" placeholder="another room"></label>
    <button>Go</button>
  </form>
  <p class="muted">Open this page in another tab or on your phone: messages go to everyone in the room but you.</p>
</footer>
</body>
</html>
`;

export const CHAT_CSS = String.raw`${pageTheme({ light: '--mine: #ddf4ff;', dark: '--mine: #0c2d6b;' })}html, body { height: 100%; }
body { margin: 0; display: flex; flex-direction: column; font: 16px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2rem; margin: 0; overflow-wrap: anywhere; }
#status { margin-left: auto; font-size: .9rem; border: 1px solid currentColor; border-radius: 1rem; padding: 0 .6rem; }
#status[data-state="open"] { color: var(--ok); }
#status[data-state="connecting"], #status[data-state="reconnecting"] { color: var(--warn); }
#status[data-state="closed"] { color: var(--bad); }
#log { flex: 1; overflow-y: auto; list-style: none; margin: 0; padding: .75rem 1rem; display: flex; flex-direction: column; gap: .4rem; }
#log li { max-width: 40rem; padding: .35rem .6rem; border-radius: .5rem; background: var(--card); border: 1px solid var(--line); overflow-wrap: anywhere; }
#log li.mine { align-self: flex-end; background: var(--mine); }
#log li.system { align-self: center; background: none; border: none; color: var(--muted); font-size: .9rem; }
#log li.pending { opacity: .6; }
.from { font-weight: 600; margin-right: .4rem; }
footer { padding: .5rem 1rem 1rem; border-top: 1px solid var(--line); }
form { display: flex; flex-wrap: wrap; gap: .5rem; margin: .25rem 0; align-items: center; }
#text { flex: 1; min-width: 10rem; }
input, button { font: inherit; padding: .4rem .6rem; border-radius: .4rem; border: 1px solid var(--line); background: var(--card); color: var(--fg); }
button { cursor: pointer; }
label { display: flex; gap: .3rem; align-items: center; color: var(--muted); }
label input { width: 9rem; }
.muted { color: var(--muted); }
p { margin: .5rem 0 0; font-size: .85rem; }
`;

export const CHAT_JS = String.raw`// The demo's chat page: one StrandsClient to the broker, in the room the URL names.
import { StrandsClient } from '/strands-client.js';

const MAX_ROOM = ${MAX_ROOM};
const MAX_NAME = ${MAX_NAME};
const MAX_TEXT = ${MAX_TEXT};
const NAME_KEY = 'strands-demo-name';
const byId = (id) => document.getElementById(id);

// As the backend cleans them: control characters to spaces, trimmed, cut to max characters.
const clean = (text, max) => Array.from(text.replace(/[\u0000-\u001f\u007f]/g, ' ').trim()).slice(0, max).join('');

function roomFromUrl() {
  const path = /^\/room\/(.+)$/.exec(location.pathname);
  let raw = new URLSearchParams(location.search).get('room') || '';
  if (path) {
    try {
      raw = decodeURIComponent(path[1]);
    } catch {
      raw = path[1];
    }
  }
  return clean(raw, MAX_ROOM) || 'lobby';
}

const room = roomFromUrl();
const roomPath = '/room/' + encodeURIComponent(room);
// One address per room, whichever way the room came: the one to share.
if (location.pathname !== roomPath) history.replaceState(null, '', roomPath);
document.title = '#' + room + ' · strands demo';
byId('room').textContent = room;

// A name chosen here is kept for every tab; until then each tab is its own guest, so two tabs are told apart.
let name = clean(sessionStorage.getItem(NAME_KEY) || localStorage.getItem(NAME_KEY) || '', MAX_NAME) || 'guest-' + Math.floor(1000 + Math.random() * 9000);
sessionStorage.setItem(NAME_KEY, name);
byId('name').value = name;

function add(className, from, text) {
  const log = byId('log');
  const li = document.createElement('li');
  li.className = className;
  if (from !== undefined) {
    const who = document.createElement('span');
    who.className = 'from';
    who.textContent = from;
    li.append(who);
  }
  li.append(text);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom) li.scrollIntoView({ block: 'end' });
  return li;
}

function setStatus(state, text) {
  const status = byId('status');
  status.dataset.state = state;
  status.textContent = text;
}

function received(data) {
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    return;
  }
  if (event.type === 'message') add('theirs', event.from, event.text);
  else if (event.type === 'members') byId('members').textContent = event.count + (event.count === 1 ? ' here (just you)' : ' here');
  else if (event.type === 'joined') add('system', undefined, event.name + ' joined');
  else if (event.type === 'left') add('system', undefined, event.name + ' left');
  else if (event.type === 'notice') add('system', undefined, event.text);
}

const wsPort = document.querySelector('meta[name="strands-ws-port"]').content;
const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.hostname + ':' + wsPort + roomPath;
let client;

function connect() {
  setStatus('connecting', 'connecting…');
  // The name travels in the query; the function is asked again on every attempt.
  client = new StrandsClient(wsUrl, { query: () => ({ name }), minDelayMs: 500, maxDelayMs: 5000, maxAttempts: Infinity });
  client.on('open', () => {
    setStatus('open', 'online');
    for (const li of document.querySelectorAll('#log li.pending')) li.classList.remove('pending');
  });
  client.on('message', ({ data }) => {
    if (typeof data === 'string') received(data);
  });
  client.on('close', ({ willReconnect }) => {
    byId('members').textContent = '';
    if (willReconnect) setStatus('reconnecting', 'reconnecting…');
  });
  client.on('reconnecting', ({ attempt, delay }) => setStatus('reconnecting', 'reconnecting (try ' + attempt + ' in ' + (delay / 1000).toFixed(1) + ' s)…'));
}

byId('send').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId('text');
  const text = clean(input.value, MAX_TEXT);
  input.value = '';
  if (text === '') return;
  const open = client.state === 'open';
  if (!client.send(text)) add('system', undefined, 'not sent: too much is waiting for the connection');
  // Sent while disconnected, it waits in the client's buffer and goes out on the next open.
  else add(open ? 'mine' : 'mine pending', name, text);
});

byId('settings').addEventListener('submit', (event) => {
  event.preventDefault();
  const other = clean(byId('other-room').value, MAX_ROOM);
  if (other !== '' && other !== room) {
    location.assign('/room/' + encodeURIComponent(other));
    return;
  }
  const chosen = clean(byId('name').value, MAX_NAME);
  byId('name').value = chosen || name;
  if (chosen === '' || chosen === name) return;
  name = chosen;
  localStorage.setItem(NAME_KEY, name);
  sessionStorage.setItem(NAME_KEY, name);
  // A new name is a new member: reconnect with it.
  client.close();
  connect();
});

connect();
`;
