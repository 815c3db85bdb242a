// tapedeck's page: plain ES module, no build step.
const csrf = document.body.dataset.csrf || '';

// Times in the viewer's time zone.
function localTimes(root = document) {
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  for (const t of root.querySelectorAll('time[datetime]')) {
    const d = new Date(t.getAttribute('datetime'));
    if (!isNaN(d)) { t.textContent = fmt.format(d); t.title = t.getAttribute('datetime'); }
  }
}

// Delete asks first.
for (const f of document.querySelectorAll('form[data-confirm]')) {
  f.addEventListener('submit', (e) => { if (!confirm(f.dataset.confirm)) e.preventDefault(); });
}

// Player: waveform from the server's peaks, click/keys to seek, speed.
const audio = document.getElementById('audio');
const canvas = document.getElementById('wave');
if (audio && canvas) {
  let peaks = null;
  const draw = () => {
    const ctx = canvas.getContext('2d');
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    if (!peaks) return;
    const n = peaks.peaks.length, pos = audio.duration ? audio.currentTime / audio.duration : 0;
    for (let i = 0; i < n; i++) {
      const x = Math.floor(i * w / n), bw = Math.max(1, Math.floor(w / n));
      const v = Math.max(1, peaks.peaks[i] / 255 * (h - 4));
      ctx.fillStyle = i / n < pos ? '#1f6feb' : '#8b949e';
      ctx.fillRect(x, (h - v) / 2, bw, v);
    }
  };
  fetch(canvas.dataset.peaks, { credentials: 'same-origin' })
    .then((r) => r.ok ? r.json() : null)
    .then((p) => { peaks = p; canvas.dataset.drawn = p ? 'true' : 'none'; draw(); });
  audio.addEventListener('timeupdate', draw);
  audio.addEventListener('loadedmetadata', draw);
  canvas.tabIndex = 0;
  const seek = (frac) => { if (audio.duration) { audio.currentTime = Math.min(Math.max(frac, 0), 1) * audio.duration; draw(); } };
  canvas.addEventListener('click', (e) => { const r = canvas.getBoundingClientRect(); seek((e.clientX - r.left) / r.width); });
  canvas.addEventListener('keydown', (e) => {
    if (!audio.duration) return;
    const step = 5 / audio.duration, cur = audio.currentTime / audio.duration;
    if (e.key === 'ArrowRight') { seek(cur + step); e.preventDefault(); }
    if (e.key === 'ArrowLeft') { seek(cur - step); e.preventDefault(); }
    if (e.key === ' ') { audio.paused ? audio.play() : audio.pause(); e.preventDefault(); }
  });
  const speed = document.getElementById('speed');
  speed?.addEventListener('change', () => { audio.playbackRate = Number(speed.value); });
}

// Live calls and the recordings table follow the server's event stream.
const calls = document.getElementById('calls');
const rows = document.getElementById('rows');
if (calls || rows) {
  let finished = null;
  const es = new EventSource('/live/events');
  const status = document.getElementById('live-status');
  es.addEventListener('open', () => { if (status) status.textContent = 'Updated live.'; });
  es.addEventListener('error', () => { if (status) status.textContent = 'Reconnecting…'; });
  es.addEventListener('snapshot', (e) => {
    const s = JSON.parse(e.data);
    if (calls) renderCalls(s);
    if (rows) {
      if (finished !== null && s.finished !== finished) refreshRows();
      finished = s.finished;
    }
  });
}

async function refreshRows() {
  const r = await fetch(location.href, { credentials: 'same-origin' });
  if (!r.ok) return;
  const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
  const fresh = doc.getElementById('rows');
  if (fresh) { rows.replaceChildren(...fresh.childNodes); localTimes(rows); }
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

function duration(since) {
  const s = Math.max(0, Math.floor((Date.now() - new Date(since)) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// The list is rebuilt only when calls or recordings change (so that a
// button is not swapped under the pointer); durations tick in place.
let lastShape = null;
setInterval(() => {
  for (const d of document.querySelectorAll('.call .dur[data-since]')) d.textContent = duration(d.dataset.since);
}, 1000);

function renderCalls(s) {
  const shape = JSON.stringify(s.calls.map((c) => [c.id, c.state, c.from, c.to, c.recordings.map((r) => [r.name, r.paused, r.state, r.muted])]));
  if (shape === lastShape) return;
  lastShape = shape;
  const keep = document.activeElement?.dataset?.key;
  if (!s.calls.length) {
    calls.replaceChildren(document.getElementById('no-calls').content.cloneNode(true));
    return;
  }
  const list = el('ul', { class: 'calls' });
  for (const c of s.calls) {
    const li = el('li', { class: 'call', 'data-channel': c.id });
    li.append(el('h2', {}, `${c.from_name ? c.from_name + ' ' : ''}${c.from || '?'} → ${c.to || '?'}`));
    li.append(el('p', {}, `${c.state} · `, el('span', { class: 'dur', 'aria-label': 'Duration', 'data-since': c.since }, duration(c.since)), ` · ${c.name}`));
    for (const r of c.recordings) {
      const state = r.paused ? 'paused' : r.state;
      const rec = el('div', { class: 'rec', 'data-recording': r.name, 'data-state': state });
      rec.append(el('span', { class: `status status-${state}` }, `Recording ${state}${r.muted ? ', muted' : ''}`), ' ', el('span', { class: 'mono' }, r.name));
      const acts = el('div', { class: 'acts', role: 'group', 'aria-label': `Recording ${r.name}` });
      const btn = (action, label) => {
        const b = el('button', { type: 'button', 'data-action': action, 'data-key': r.name + ':' + action }, label);
        b.addEventListener('click', () => act(r.name, action));
        acts.append(b);
      };
      btn(r.paused ? 'resume' : 'pause', r.paused ? 'Resume' : 'Pause');
      btn(r.muted ? 'unmute' : 'mute', r.muted ? 'Unmute' : 'Mute');
      btn('stop', 'Stop');
      rec.append(acts);
      li.append(rec);
    }
    list.append(li);
  }
  calls.replaceChildren(list);
  if (keep) calls.querySelector(`[data-key="${CSS.escape(keep)}"]`)?.focus();
}

async function act(name, action) {
  const body = new URLSearchParams({ name, action });
  const r = await fetch('/live/recording', { method: 'POST', body, credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf } });
  const status = document.getElementById('live-status');
  if (!r.ok && status) status.textContent = `Could not ${action}: ${await r.text()}`;
}

localTimes();
