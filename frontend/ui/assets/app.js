// The app shell: routes the address bar to a view, links clicks to history
// navigation, runs the live stream and shows its state.

import { takeToken, ApiError } from './api.js';
import { Stream } from './stream.js';
import { h, fill } from './dom.js';
import { binsView } from './bins.js';
import { binView } from './bin.js';
import { tasksView, taskView } from './tasks.js';

takeToken();

const main = document.getElementById('main');
const connEl = document.getElementById('conn');
const bannerEl = document.getElementById('banner');

let current = null; // the mounted view: {el, key, update?, onEvent?, onResume?, destroy?}

// route parses an app path; segments are URL-decoded.
export function route(pathname) {
  let segs;
  try {
    segs = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return { view: 'notfound' };
  }
  const [a, b, c, d] = segs;
  if (segs.length === 0 || (a === 'bins' && segs.length === 1)) return { view: 'bins' };
  if (a === 'bins' && segs.length === 2) return { view: 'bin', bin: b };
  if (a === 'bins' && segs.length === 4 && c === 'captures') return { view: 'bin', bin: b, capture: d };
  if (a === 'tasks' && segs.length === 1) return { view: 'tasks' };
  if (a === 'tasks' && segs.length === 2) return { view: 'task', task: b };
  return { view: 'notfound' };
}

let bannerTimer = null;

// notify shows a message (an Error or a string) in the banner, as text.
function notify(msg, kind = 'error') {
  let text = msg instanceof Error ? msg.message : String(msg);
  if (msg instanceof ApiError && msg.status === 401) {
    text = 'This server needs a token: open the page as /?token=YOUR_TOKEN (it is then remembered in this browser).';
  }
  clearTimeout(bannerTimer);
  bannerEl.className = `banner banner-${kind}`;
  fill(bannerEl, 
    h('span', { text }),
    h('button', { type: 'button', class: 'link', 'aria-label': 'dismiss', onclick: () => (bannerEl.hidden = true) }, '×'),
  );
  bannerEl.hidden = false;
  if (kind !== 'error') bannerTimer = setTimeout(() => (bannerEl.hidden = true), 4000);
}

export function navigate(path, { replace = false } = {}) {
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

const ctx = { navigate, notify };

function viewKey(r) {
  if (r.view === 'bin') return `bin:${r.bin}`;
  if (r.view === 'task') return `task:${r.task}`;
  return r.view;
}

function render() {
  const r = route(location.pathname);
  const key = viewKey(r);
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === (r.view === 'bin' || r.view === 'bins' ? 'bins' : r.view === 'notfound' ? '' : 'tasks'));
  }
  if (current && current.key === key && current.update) {
    current.update(r);
    return;
  }
  if (current && current.destroy) current.destroy();
  let view;
  switch (r.view) {
    case 'bins':
      view = binsView(ctx);
      break;
    case 'bin':
      view = binView(ctx, r);
      break;
    case 'tasks':
      view = tasksView(ctx);
      break;
    case 'task':
      view = taskView(ctx, r.task);
      break;
    default:
      view = {
        el: h('section', { class: 'page' }, h('h1', { text: 'Not found' }), h('p', {}, 'Nothing lives at ', h('code', { text: location.pathname }), '. ', h('a', { href: '/' }, 'Back to the bins'), '.')),
      };
  }
  view.key = key;
  current = view;
  fill(main, view.el);
  document.title = view.title ? `${view.title} · callbin` : 'callbin';
}

// In-app links navigate without a reload.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/b/')) return;
  if (route(url.pathname).view === 'notfound') return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', render);

const stream = new Stream({
  onEvent(ev) {
    if (current && current.onEvent) current.onEvent(ev);
  },
  onState({ state, attempt, code }) {
    connEl.className = `conn conn-${state}`;
    connEl.dataset.state = state;
    connEl.dataset.attempt = String(attempt || 0);
    connEl.textContent = state === 'connected' ? 'live' : state === 'connecting' ? 'connecting' : `reconnecting (attempt ${attempt})`;
    connEl.title = code ? `last close code ${code}` : '';
  },
  onResume(info) {
    if (current && current.onResume) current.onResume(info);
  },
});
ctx.stream = stream;

// A page in the back/forward cache keeps no stream open; it resumes when
// it is shown again.
window.addEventListener('pagehide', () => stream.stop());
window.addEventListener('pageshow', (e) => {
  if (e.persisted) stream.restart();
});

render();
stream.start();
