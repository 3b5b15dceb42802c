// The chat page: a StrandsClient (the repository's browser client, served beside
// this file) and what the backend sends it, one JSON object per message.
import { StrandsClient } from './strands-client.js';

const $ = (selector) => document.querySelector(selector);
const MAX_LOG = 500;

// Where the broker is: the page server's --ws-url, else port 8080 of this page's host.
const { brokerUrl } = await (await fetch('config.json')).json();
const url = brokerUrl ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:8080/`;

function show(state, text) {
  $('#status').dataset.state = state;
  $('#status').textContent = text;
}

/** The client has stopped for good: nothing more can be sent. */
function stopped(state, text) {
  $('#text').disabled = true;
  $('#send button').disabled = true;
  show(state, text);
}

function log(kind, from, text) {
  const item = document.createElement('li');
  item.className = kind;
  if (from !== null) item.append(Object.assign(document.createElement('b'), { textContent: from }), ': ');
  item.append(text);
  $('#log').append(item);
  while ($('#log').childElementCount > MAX_LOG) $('#log').firstElementChild.remove();
  item.scrollIntoView({ block: 'end' });
}

function start(name, firstRoom) {
  let room = firstRoom;
  $('#room').textContent = room;
  $('#login').hidden = true;
  $('#chat').hidden = false;
  $('#text').focus();

  // A function: each reconnect asks for the room the backend last moved us to.
  const client = new StrandsClient(url, { query: () => ({ name, room }) });

  const handlers = new Map([
    ['message', (m) => log('message', m.from, m.text)],
    ['mine', (m) => log('mine', 'you', m.text)],
    ['notice', (m) => log('notice', null, m.text)],
    ['joined', (m) => {
      room = m.room;
      $('#room').textContent = room;
      $('#members').replaceChildren();
    }],
    ['members', (m) => {
      // A list sent to a room just left may still be on its way.
      if (m.room !== room) return;
      $('#members').replaceChildren(...m.members.map((member) => Object.assign(document.createElement('li'), { textContent: member, className: member === name ? 'self' : '' })));
    }],
  ]);

  client.on('open', () => show('open', `online as ${name}`));
  client.on('message', ({ data }) => {
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    handlers.get(parsed?.type)?.(parsed);
  });
  client.on('close', ({ code, reason, willReconnect }) => {
    // Who is here is unknown until the next connection's list.
    $('#members').replaceChildren();
    if (willReconnect) show('reconnecting', 'connection lost, reconnecting…');
    else if (code >= 4000 && code <= 4999) stopped('kicked', `${reason || 'removed by the server'} (close ${code}): reload to come back`);
    else stopped('closed', `closed (${code}${reason ? ` ${reason}` : ''}): reload to come back`);
  });
  client.on('reconnecting', ({ attempt, delay }) => show('reconnecting', `reconnecting: attempt ${attempt} in ${(delay / 1000).toFixed(1)} s`));
  client.on('failed', ({ attempts }) => stopped('failed', `offline after ${attempts} attempts: reload to try again`));

  $('#send').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('#text').value;
    if (text.trim() === '') return;
    // Sends made while reconnecting wait in the client's buffer; false: it is full, or the client stopped.
    if (!client.send(text)) log('notice', null, `not sent (the client is ${client.state})`);
    $('#text').value = '';
  });
}

$('#login').addEventListener('submit', (event) => {
  event.preventDefault();
  start($('#name').value, $('#start-room').value);
});
