// The bins list: every bin with its URL, e-mail address, capture count and
// last capture time, kept current by the stream; create and delete.

import { api } from './api.js';
import { h, binPath, frameBatch, debounce, copyText, fill } from './dom.js';
import { formatTime, timeAgo } from './format.js';

export function binsView(ctx) {
  const bins = new Map(); // name -> bin
  let loaded = false;

  const nameInput = h('input', { name: 'name', placeholder: 'new bin name (optional)', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'new bin name' });
  const form = h(
    'form',
    { class: 'inline-form', onsubmit: create },
    nameInput,
    h('button', { type: 'submit', class: 'primary' }, 'Create bin'),
  );
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'grid bins-table' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Bin' }), h('th', { text: 'Capture URL' }), h('th', { text: 'E-mail' }), h('th', { class: 'num', text: 'Captures' }), h('th', { text: 'Last capture' }), h('th', {}))),
    tbody,
  );
  const empty = h('div', { class: 'empty', hidden: true });
  const el = h('section', { class: 'page bins-page' }, h('div', { class: 'page-head' }, h('h1', { text: 'Bins' }), form), table, empty);

  async function create(e) {
    e.preventDefault();
    const name = nameInput.value.trim();
    try {
      const bin = await api('/api/v1/bins', { method: 'POST', body: name ? { name } : {} });
      nameInput.value = '';
      bins.set(bin.name, { capture_count: 0, ...bin });
      ctx.navigate(binPath(bin.name));
    } catch (err) {
      ctx.notify(err);
    }
  }

  async function remove(name) {
    if (!confirm(`Delete bin "${name}" and all its captures?`)) return;
    try {
      await api(`/api/v1/bins/${encodeURIComponent(name)}`, { method: 'DELETE' });
      bins.delete(name);
      render();
    } catch (err) {
      ctx.notify(err);
    }
  }

  async function load() {
    try {
      const data = await api('/api/v1/bins');
      bins.clear();
      for (const b of (data && data.items) || []) bins.set(b.name, b);
      loaded = true;
      render();
    } catch (err) {
      ctx.notify(err);
    }
  }
  const reload = debounce(load, 300);

  function copyButton(text, label) {
    return h('button', {
      type: 'button',
      class: 'small',
      title: `copy ${label}`,
      onclick: async (e) => {
        const ok = await copyText(text);
        e.target.textContent = ok ? 'copied' : 'select and copy';
        setTimeout(() => (e.target.textContent = 'copy'), 1200);
      },
    }, 'copy');
  }

  const render = frameBatch(() => {
    const rows = [...bins.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    fill(tbody, 
      ...rows.map((b) =>
        h(
          'tr',
          { dataset: { bin: b.name } },
          h('td', {}, h('a', { href: binPath(b.name), class: 'bin-name' }, b.name)),
          h('td', { class: 'mono' }, b.url ? [h('span', { class: 'url', text: b.url }), ' ', copyButton(b.url, 'URL')] : ''),
          h('td', { class: 'mono' }, b.email ? [h('span', { text: b.email }), ' ', copyButton(b.email, 'address')] : ''),
          h('td', { class: 'num', text: String(b.capture_count ?? 0) }),
          h('td', { title: formatTime(b.last_capture_at), text: b.last_capture_at ? timeAgo(b.last_capture_at) : '—' }),
          h('td', { class: 'actions' }, h('button', { type: 'button', class: 'small danger', onclick: () => remove(b.name) }, 'Delete')),
        ),
      ),
    );
    table.hidden = rows.length === 0;
    empty.hidden = !loaded || rows.length > 0;
    fill(empty, 
      h('p', { text: 'No bins yet. Send anything to a bin and it appears here, for example:' }),
      h('pre', { class: 'mono', text: `curl -d '{"hello":"world"}' ${location.origin}/b/hello` }),
      h('p', { text: 'or create one above.' }),
    );
  });

  // Relative times ("12s ago") move on.
  const tick = setInterval(render, 5000);

  load();

  return {
    el,
    title: 'Bins',
    onEvent(ev) {
      if (ev.type === 'capture') {
        const b = bins.get(ev.bin);
        if (!b) {
          reload();
          return;
        }
        b.capture_count = (b.capture_count || 0) + 1;
        b.last_capture_at = ev.received_at;
        render();
      } else if (ev.type === 'bin') {
        if (ev.action === 'deleted') {
          bins.delete(ev.name);
          render();
        } else {
          reload();
        }
      }
    },
    // The list is read when the view opens; a first connection that
    // follows brings nothing it lacks but a rare race.
    onResume: ({ first } = {}) => first || load(),
    destroy() {
      clearInterval(tick);
      reload.cancel();
    },
  };
}
