// The tincan chat page: the browser's own WebSocket, the tincan.v1 protocol
// (JSON envelopes, see the README), reconnection with backoff, and a protocol
// inspector that shows each frame through the tincan codec compiled to wasm.
// Everything from the network is shown with textContent, never as HTML.

const room = decodeURIComponent(location.pathname.slice(1)) || 'lobby';
const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${location.pathname}`;

const $ = (id) => document.getElementById(id);
const messages = $('messages');
const status = $('status');
const people = new Set();
// A long-lived tab keeps only the newest lines.
const MAX_LINES = 1000;
// Messages already shown, so that the history sent on a reconnect does not
// repeat them (the newest ones: history is at most a room's last messages).
const seen = new Set();
let socket = null;
let attempt = 0;
let wantedNick = localStorage.getItem('tincan.nick') || '';

$('room-name').textContent = `#${room}`;
$('nick').value = wantedNick;

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function time(ts) {
  const el = document.createElement('time');
  const date = new Date(ts);
  el.dateTime = date.toISOString();
  el.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return el;
}

function addLine(kind, parts, ts) {
  const li = document.createElement('li');
  li.className = kind;
  if (ts) li.append(time(ts));
  for (const [cls, text] of parts) {
    const span = document.createElement('span');
    if (cls) span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
  messages.append(li);
  while (messages.childElementCount > MAX_LINES) messages.firstElementChild.remove();
  if (atBottom) messages.scrollTop = messages.scrollHeight;
}

function said(m, kind = 'message') {
  const key = `${m.ts}|${m.from}|${m.type}|${m.text}`;
  if (seen.has(key)) return;
  seen.add(key);
  if (seen.size > MAX_LINES) seen.delete(seen.values().next().value);
  if (m.type === 'action') addLine(kind, [[null, `* ${m.from} ${m.text}`]], m.ts);
  else addLine(kind, [['from', m.from], [null, `: ${m.text}`]], m.ts);
}

function renderPeople() {
  const list = $('people');
  list.replaceChildren(...[...people].sort().map((nick) => {
    const li = document.createElement('li');
    li.textContent = nick;
    return li;
  }));
}

function handle(m) {
  switch (m.type) {
    case 'welcome':
      people.clear();
      addLine('notice', [[null, m.text]], m.ts);
      if (wantedNick && wantedNick !== m.nick) send(`/nick ${wantedNick}`);
      send('/who');
      break;
    case 'history':
      for (const entry of m.messages) said(entry, 'history');
      break;
    case 'message':
    case 'action':
      said(m);
      break;
    case 'join':
      people.add(m.from);
      addLine('notice', [[null, `${m.from} joined`]], m.ts);
      break;
    case 'leave':
      people.delete(m.from);
      addLine('notice', [[null, `${m.from} left`]], m.ts);
      break;
    case 'nick':
      people.delete(m.from);
      people.add(m.nick);
      addLine('notice', [[null, m.text]], m.ts);
      break;
    case 'who':
      people.clear();
      for (const nick of m.users) people.add(nick);
      break;
    case 'info':
      addLine('notice', [[null, m.text]], m.ts);
      break;
    case 'error':
      addLine('error', [[null, m.text]], m.ts);
      break;
    default:
      return;
  }
  renderPeople();
}

function send(text) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(text);
  inspect('sent', text);
  return true;
}

function connect() {
  setStatus('connecting', attempt ? `Reconnecting (attempt ${attempt + 1})…` : 'Connecting…');
  socket = new WebSocket(url, 'tincan.v1');
  socket.onopen = () => {
    // What the browser and the server agreed on (RFC 7692 permessage-deflate
    // when both offer it): the inspector shows frames as they then travel.
    $('extensions').textContent = socket.extensions || 'none';
    if (attempt > 0) addLine('notice', [[null, 'Reconnected.']], Date.now());
    attempt = 0;
    setStatus('open', `Connected to #${room}`);
  };
  socket.onmessage = (event) => {
    inspect('received', event.data);
    try {
      handle(JSON.parse(event.data));
    } catch {
      addLine('notice', [[null, String(event.data)]]);
    }
  };
  socket.onclose = (event) => {
    // Exponential backoff with jitter, capped at 10 s.
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    const why = event.reason ? `: ${event.reason}` : '';
    if (attempt === 1) addLine('error', [[null, `Disconnected (${event.code}${why}); reconnecting…`]], Date.now());
    setStatus('closed', `Disconnected (${event.code}${why}). Retrying in ${Math.round(delay / 1000)} s…`);
    setTimeout(connect, delay);
  };
}

$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('message');
  if (input.value && send(input.value)) input.value = '';
});

$('nick-form').addEventListener('submit', (event) => {
  event.preventDefault();
  wantedNick = $('nick').value.trim();
  localStorage.setItem('tincan.nick', wantedNick);
  send(`/nick ${wantedNick}`);
});

// The inspector: the browser does not expose the wire, so each message is
// encoded as the frame that carries it (masked from the browser, unmasked from
// the server) and decoded back by the same codec the server runs.
let codec = null;
const pending = [];

async function loadCodec() {
  try {
    const wasm = await import('/static/pkg/tincan_web.js');
    await wasm.default();
    codec = wasm;
    for (const [dir, text] of pending.splice(0)) inspect(dir, text);
  } catch (error) {
    $('inspector-note').textContent = `The wasm codec is not available (${error}).`;
  }
}

function inspect(dir, text) {
  if (!codec) {
    if (pending.length < 50) pending.push([dir, text]);
    return;
  }
  // The browser masks what it sends with a fresh key per frame (§5.3).
  const mask = dir === 'sent' ? crypto.getRandomValues(new Uint8Array(4)) : undefined;
  let frames;
  try {
    const deflate = socket.extensions.includes('permessage-deflate');
    frames = codec.inspectText(text, dir === 'sent', mask, deflate);
  } catch (error) {
    $('inspector-note').textContent = `The codec rejected a frame: ${error.message ?? error}`;
    return;
  }
  for (const frame of frames) {
    const row = document.createElement('tr');
    const hex = [...frame.payload.slice(0, 24)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const cells = [
      dir === 'sent' ? '→' : '←',
      frame.fin ? '1' : '0',
      frame.rsv & 4 ? `${frame.opcode} (compressed)` : frame.opcode,
      frame.mask ? [...frame.mask].map((b) => b.toString(16).padStart(2, '0')).join('') : '-',
      String(frame.length),
      frame.length > 24 ? `${hex} …` : hex,
    ];
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      row.append(td);
    }
    const body = $('frames');
    body.prepend(row);
    while (body.rows.length > 200) body.deleteRow(-1);
  }
}

loadCodec();
connect();
