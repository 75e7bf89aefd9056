// One capture: summary, body (pretty JSON, raw text, hex), headers, query,
// an e-mail's parts, copy as curl and replay. Every captured value goes in
// as text; an e-mail's HTML goes only into a sandboxed iframe.

import { api, download } from './api.js';
import { h, emailFrame, copyText, safeURL, fill } from './dom.js';
import {
  base64ToBytes,
  curlCommand,
  formatBytes,
  formatTime,
  hexDump,
  parseQuery,
  prettyJSON,
  replyClass,
  replyText,
} from './format.js';

const hexLimit = 64 * 1024;

export function captureDetail(ctx, binName, id) {
  const url = `/api/v1/bins/${encodeURIComponent(binName)}/captures/${encodeURIComponent(id)}`;
  const el = h('article', { class: 'capture', dataset: { id: String(id) } }, h('p', { class: 'muted', text: 'Loading…' }));
  const ac = new AbortController();

  api(url, { signal: ac.signal })
    .then((c) => {
      fill(el, ...render(c));
    })
    .catch((err) => {
      if (err.name === 'AbortError') return;
      fill(el, h('div', { class: 'empty' }, h('p', { text: err.status === 404 ? `Capture ${id} is not in this bin (any more).` : err.message })));
      if (err.status !== 404) ctx.notify(err);
    });

  function render(c) {
    const out = [];
    const isMail = c.kind === 'email';
    const title = isMail
      ? h('h2', {}, h('span', { class: 'method m-email', text: 'MAIL' }), ' ', h('span', { text: (c.email && c.email.subject) || '(no subject)' }))
      : h('h2', {}, h('span', { class: `method m-${String(c.method || '').toLowerCase()}`, text: c.method || '' }), ' ', h('span', { class: 'path', text: c.path || '/' }));
    out.push(title);

    const reply = replyText(c.reply);
    out.push(
      h(
        'dl',
        { class: 'summary' },
        pair('id', String(c.id)),
        pair('received', formatTime(c.received_at), c.received_at),
        pair('remote', c.remote_addr || ''),
        pair('size', formatBytes(c.size) + (c.truncated ? ' (truncated)' : '')),
        reply ? pair('reply', h('span', { class: `reply r-${replyClass(c.reply)}`, text: reply })) : null,
        c.query ? pair('query', h('code', { text: '?' + c.query })) : null,
      ),
    );

    // Actions.
    const actions = h('div', { class: 'actions' });
    const rawName = isMail ? `capture-${c.id}.eml` : `capture-${c.id}.bin`;
    actions.append(h('button', { type: 'button', onclick: () => download(`${url}/raw`, rawName).catch(ctx.notify) }, isMail ? 'Download .eml' : 'Download body'));
    let curlBox = null;
    if (!isMail) {
      const cmd = curlCommand(c, location.origin);
      curlBox = h('details', { class: 'curl' }, h('summary', { text: 'curl command' }), h('pre', { class: 'mono curl-cmd', text: cmd }));
      actions.append(
        h('button', {
          type: 'button',
          class: 'copy-curl',
          onclick: async (e) => {
            const ok = await copyText(cmd);
            curlBox.open = true;
            e.target.textContent = ok ? 'Copied' : 'Copy failed: select it below';
            setTimeout(() => (e.target.textContent = 'Copy as curl'), 1500);
          },
        }, 'Copy as curl'),
      );
    }
    out.push(actions);
    if (curlBox) out.push(curlBox);
    if (!isMail) out.push(replayForm(c));

    if (isMail && c.email) out.push(...emailSection(c));
    out.push(bodySection(c, isMail));
    out.push(section('Headers', headersTable(c.headers || [])));
    if (c.query) out.push(section('Query', queryTable(c.query)));
    return out;
  }

  function replayForm(c) {
    const input = h('input', { type: 'url', required: true, placeholder: 'http://127.0.0.1:3000/webhook', 'aria-label': 'replay to URL', spellcheck: 'false' });
    const result = h('pre', { class: 'mono replay-result', hidden: true });
    const form = h(
      'form',
      {
        class: 'inline-form replay',
        onsubmit: async (e) => {
          e.preventDefault();
          result.hidden = false;
          result.textContent = 'sending…';
          try {
            const r = await api(`${url}/replay`, { method: 'POST', body: { url: input.value.trim() } });
            result.textContent = prettyJSON(JSON.stringify(r)) || JSON.stringify(r);
          } catch (err) {
            result.textContent = `replay failed: ${err.message}`;
          }
        },
      },
      h('label', { text: 'Replay to ' }),
      input,
      h('button', { type: 'submit' }, 'Replay'),
    );
    return h('div', { class: 'replay-box' }, form, result);
  }

  function emailSection(c) {
    const m = c.email;
    const out = [];
    out.push(
      h(
        'dl',
        { class: 'summary email-head' },
        pair('from', m.from || ''),
        pair('to', Array.isArray(m.to) ? m.to.join(', ') : m.to || ''),
        pair('subject', m.subject || ''),
        pair('date', m.date || ''),
      ),
    );
    if (m.parse_error) out.push(h('p', { class: 'warn', text: `This message did not parse cleanly: ${m.parse_error}` }));
    const views = [];
    if (m.html) {
      views.push({
        name: 'HTML',
        render: () => [
          h('p', { class: 'muted small', text: 'Shown sandboxed: scripts, forms and remote content do not run or load.' }),
          emailFrame(m.html, `HTML of capture ${c.id}`),
        ],
      });
      views.push({ name: 'HTML source', render: () => h('pre', { class: 'mono body', text: m.html }) });
    }
    if (m.text != null && m.text !== '') views.push({ name: 'Text', render: () => h('pre', { class: 'body text', text: m.text }) });
    if (views.length) out.push(section('Message', switcher(views, m.html ? 'HTML' : 'Text')));
    const atts = m.attachments || [];
    if (atts.length) {
      out.push(
        section(
          `Attachments (${atts.length})`,
          h(
            'ul',
            { class: 'attachments' },
            ...atts.map((a, i) => {
              const href = a.url ? safeURL(a.url) : null;
              const label = a.name || `attachment-${i + 1}`;
              return h(
                'li',
                {},
                href
                  ? h('a', { href, download: label, onclick: (e) => { e.preventDefault(); download(href, label).catch(ctx.notify); } }, label)
                  : h('span', { text: label }),
                ' ',
                h('span', { class: 'muted', text: `${a.type || 'application/octet-stream'}, ${formatBytes(a.size)}` }),
              );
            }),
          ),
        ),
      );
    }
    return out;
  }

  function bodySection(c, isMail) {
    const views = [];
    let first = 'Raw';
    if (c.body_base64) {
      let bytes;
      try {
        bytes = base64ToBytes(c.body_base64);
      } catch {
        return section('Body', h('p', { class: 'warn', text: 'The body could not be decoded from base64.' }));
      }
      views.push({ name: 'Hex', render: () => hexView(bytes) });
      first = 'Hex';
    } else if (c.body != null && c.body !== '') {
      const pretty = isMail ? null : prettyJSON(c.body);
      if (pretty) {
        views.push({ name: 'JSON', render: () => h('pre', { class: 'mono body json', text: pretty }) });
        first = 'JSON';
      }
      views.push({ name: 'Raw', render: () => h('pre', { class: 'mono body raw', text: c.body }) });
      views.push({ name: 'Hex', render: () => hexView(new TextEncoder().encode(c.body)) });
    } else {
      return section(isMail ? 'Raw message' : 'Body', h('p', { class: 'muted', text: 'empty' }));
    }
    const title = `${isMail ? 'Raw message' : 'Body'} · ${formatBytes(c.size)}${c.truncated ? ' · truncated' : ''}${c.body_encoding ? ` · ${c.body_encoding}` : ''}`;
    return section(title, switcher(views, first));
  }

  function hexView(bytes) {
    const more = bytes.length > hexLimit ? h('p', { class: 'muted small', text: `First ${formatBytes(hexLimit)} of ${formatBytes(bytes.length)}; download the body for the rest.` }) : null;
    return [h('pre', { class: 'mono body hex', text: hexDump(bytes, hexLimit) }), more];
  }

  return {
    el,
    destroy() {
      ac.abort();
    },
  };
}

function pair(k, v, title) {
  return [h('dt', { text: k }), h('dd', { title: title || null }, v)];
}

function section(title, ...content) {
  return h('section', { class: 'part' }, h('h3', { text: title }), ...content);
}

// switcher shows one of several renderings, with buttons to change.
function switcher(views, first) {
  const box = h('div', { class: 'view' });
  const buttons = views.map((v) =>
    h('button', {
      type: 'button',
      class: 'tab small',
      dataset: { view: v.name },
      onclick: () => show(v.name),
    }, v.name),
  );
  function show(name) {
    const v = views.find((x) => x.name === name) || views[0];
    for (const b of buttons) b.classList.toggle('active', b.dataset.view === v.name);
    fill(box, ...[].concat(v.render()));
  }
  show(first);
  return h('div', { class: 'switcher' }, views.length > 1 ? h('div', { class: 'tabs small' }, ...buttons) : null, box);
}

function headersTable(headers) {
  if (!headers.length) return h('p', { class: 'muted', text: 'none' });
  return h(
    'table',
    { class: 'grid kv headers' },
    h('tbody', {}, ...headers.map(([n, v]) => h('tr', {}, h('th', { text: n }), h('td', { class: 'mono', text: v })))),
  );
}

function queryTable(raw) {
  const pairs = parseQuery(raw);
  return h(
    'table',
    { class: 'grid kv query' },
    h('tbody', {}, ...pairs.map(([k, v]) => h('tr', {}, h('th', { text: k }), h('td', { class: 'mono', text: v })))),
  );
}
