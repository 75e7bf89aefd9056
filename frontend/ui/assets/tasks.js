// Sender tasks: the list, and one task with each callback delivery's
// attempts drawn on a timeline (the retry ladder at a glance).

import { api } from './api.js';
import { h, s, taskPath, frameBatch, debounce, fill } from './dom.js';
import { attemptLabel, attemptOK, formatDuration, formatTime, prettyJSON, timeline, timeAgo } from './format.js';

function callbackState(t) {
  if (t.callback_succeeded === true) return h('span', { class: 'reply r-ok', text: 'delivered' });
  if (t.callback_succeeded === false) return h('span', { class: 'reply r-fail', text: 'failed' });
  if (!t.callback_url) return h('span', { class: 'muted', text: '—' });
  return h('span', { class: 'reply r-none', text: 'pending' });
}

function latency(ms) {
  return ms == null ? '' : `${Math.round(ms * 10) / 10} ms`;
}

export function tasksView(ctx) {
  const tasks = new Map(); // task_id -> task
  const order = []; // task ids, newest first as listed
  const lastAttempt = new Map(); // task_id -> attempt event
  let nextToken = null;
  let loaded = false;

  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'grid tasks-table' },
    h('thead', {}, h('tr', {}, ...['Task', 'Type', 'Status', 'Callback', 'Last attempt', 'Updated'].map((t) => h('th', { text: t })))),
    tbody,
  );
  const more = h('button', { type: 'button', class: 'more', hidden: true, onclick: () => load(nextToken) }, 'Load more');
  const empty = h('div', { class: 'empty', hidden: true });
  const el = h('section', { class: 'page tasks-page' }, h('div', { class: 'page-head' }, h('h1', { text: 'Tasks' })), table, empty, more);

  async function load(token) {
    try {
      const p = new URLSearchParams({ limit: '50' });
      if (token) p.set('next_token', token);
      const data = await api(`/v1/tasks?${p}`);
      if (!token) {
        tasks.clear();
        order.length = 0;
      }
      for (const t of (data && data.docs) || []) {
        if (!tasks.has(t.task_id)) order.push(t.task_id);
        tasks.set(t.task_id, t);
      }
      nextToken = data && data.has_more && data.next_token ? data.next_token : null;
      loaded = true;
      render();
    } catch (err) {
      ctx.notify(err);
    }
  }
  const reload = debounce(() => load(null), 400);

  const render = frameBatch(() => {
    fill(tbody, 
      ...order.map((id) => {
        const t = tasks.get(id);
        const a = lastAttempt.get(id);
        return h(
          'tr',
          { dataset: { task: id } },
          h('td', { class: 'mono' }, h('a', { href: taskPath(id), text: id })),
          h('td', { text: t.type || '' }),
          h('td', { text: t.status || '' }),
          h('td', {}, callbackState(t)),
          h('td', {}, a ? h('span', { class: `reply r-${attemptOK(a) ? 'ok' : 'fail'}`, text: `#${a.attempt} ${attemptLabel(a)}` }) : ''),
          h('td', { title: formatTime(t.updated_at), text: timeAgo(t.updated_at) }),
        );
      }),
    );
    table.hidden = order.length === 0;
    more.hidden = !nextToken;
    empty.hidden = !loaded || order.length > 0;
    fill(empty, h('p', { text: 'No tasks yet. Create one through the task API, for example:' }), h('pre', {
      class: 'mono',
      text: `curl -u key: -H 'Content-Type: application/json' \\\n  -d '{"callback_url":"${location.origin}/b/hook","instruction":"pick one","categories":["red","blue"]}' \\\n  ${location.origin}/v1/task/categorization`,
    }));
  });
  const tick = setInterval(render, 5000);

  load(null);

  return {
    el,
    title: 'Tasks',
    onEvent(ev) {
      if (ev.type === 'task') {
        const t = tasks.get(ev.task_id);
        if (!t) {
          reload();
          return;
        }
        if (ev.status) t.status = ev.status;
        if (ev.callback_succeeded !== undefined) t.callback_succeeded = ev.callback_succeeded;
        t.updated_at = new Date().toISOString();
        render();
      } else if (ev.type === 'attempt') {
        lastAttempt.set(ev.task_id, ev);
        if (!tasks.has(ev.task_id)) reload();
        render();
      }
    },
    onResume: ({ first } = {}) => first || load(null),
    destroy() {
      clearInterval(tick);
      reload.cancel();
    },
  };
}

export function taskView(ctx, id) {
  const base = `/v1/task/${encodeURIComponent(id)}`;
  const head = h('div', { class: 'task-head' }, h('h1', {}, h('span', { class: 'muted', text: 'task ' }), h('span', { class: 'mono', text: id })));
  const summary = h('div', { class: 'task-summary' });
  const deliveries = h('div', { class: 'deliveries' }, h('p', { class: 'muted', text: 'Loading…' }));
  const el = h(
    'section',
    { class: 'page task-page' },
    h('p', {}, h('a', { href: '/tasks', text: '← all tasks' })),
    head,
    summary,
    h('h2', { text: 'Callbacks' }),
    deliveries,
  );

  async function loadTask() {
    try {
      const t = await api(base);
      renderTask(t);
    } catch (err) {
      fill(summary, h('p', { class: 'warn', text: err.status === 404 ? 'No such task.' : err.message }));
    }
  }

  async function loadCallbacks() {
    try {
      const data = await api(`${base}/callbacks`);
      renderDeliveries((data && data.items) || []);
    } catch (err) {
      fill(deliveries, h('p', { class: 'warn', text: err.message }));
    }
  }
  const refresh = debounce(() => {
    loadTask();
    loadCallbacks();
  }, 250);

  async function retryNow() {
    try {
      await api(`${base}/callbacks/retry`, { method: 'POST', body: {} });
      ctx.notify('Callback sent again.', 'info');
      refresh();
    } catch (err) {
      ctx.notify(err);
    }
  }

  function renderTask(t) {
    const dl = h('dl', { class: 'summary' });
    const add = (k, v) => dl.append(h('dt', { text: k }), h('dd', {}, v));
    add('type', t.type || '');
    add('status', t.status || '');
    add('callback', callbackState(t));
    add('callback URL', h('code', { text: t.callback_url || '—' }));
    if (t.instruction) add('instruction', t.instruction);
    add('created', formatTime(t.created_at));
    add('updated', formatTime(t.updated_at));
    if (t.completed_at) add('completed', formatTime(t.completed_at));
    if (t.customer_review_status) add('review', t.customer_review_status);
    fill(summary, 
      dl,
      h('div', { class: 'actions' }, t.callback_url ? h('button', { type: 'button', onclick: retryNow }, 'Send callback again') : null),
      h('details', {}, h('summary', { text: 'task JSON' }), h('pre', { class: 'mono body json', text: prettyJSON(JSON.stringify(t)) || '' })),
    );
  }

  function renderDeliveries(items) {
    if (!items.length) {
      fill(deliveries, h('p', { class: 'muted', text: 'No callback yet: one is sent when the task completes (or errs, is audited or recalled).' }));
      return;
    }
    fill(deliveries, ...items.map(deliveryCard));
  }

  refresh();

  return {
    el,
    title: `task ${id}`,
    onEvent(ev) {
      if ((ev.type === 'attempt' || ev.type === 'task') && ev.task_id === id) refresh();
    },
    onResume: ({ first } = {}) => first || refresh(),
    destroy() {
      refresh.cancel();
    },
  };
}

function deliveryCard(d) {
  const attempts = d.attempts || [];
  const ok = attempts.filter(attemptOK).length;
  return h(
    'div',
    { class: 'delivery', dataset: { delivery: String(d.id) } },
    h(
      'div',
      { class: 'delivery-head' },
      h('strong', { text: d.event || 'callback' }),
      ' → ',
      h('code', { text: d.target || '' }),
      ' ',
      h('span', { class: `badge state-${String(d.state || '').toLowerCase()}`, text: d.state || '' }),
      h('span', { class: 'muted', text: ` ${attempts.length} attempt${attempts.length === 1 ? '' : 's'}, ${ok} ok` }),
      d.next_attempt_at ? h('span', { class: 'muted', text: ` · next ${formatTime(d.next_attempt_at)}` }) : null,
    ),
    timelineSVG(attempts, d.next_attempt_at),
    attemptsTable(attempts),
  );
}

// timelineSVG draws attempts as dots on a log time axis from the first
// attempt: green for a 2xx, red otherwise, a hollow dot for the next one.
export function timelineSVG(attempts, next) {
  const width = 760;
  const height = 86;
  const y = 44;
  const lay = timeline(attempts, next, width, 24);
  const svg = s('svg', {
    class: 'timeline',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `${attempts.length} attempts over ${formatDuration(lay.span)}`,
  });
  svg.append(s('line', { class: 'axis', x1: 24, x2: width - 24, y1: y, y2: y }));
  for (const t of lay.ticks) {
    svg.append(
      s('line', { class: 'tick', x1: t.x, x2: t.x, y1: y - 4, y2: y + 4 }),
      s('text', { class: 'tick-label', x: t.x, y: y + 22, 'text-anchor': 'middle', text: t.label }),
    );
  }
  if (lay.next) {
    svg.append(
      s('line', { class: 'pending-line', x1: lay.points.length ? lay.points[lay.points.length - 1].x : 24, x2: lay.next.x, y1: y, y2: y }),
      s('circle', { class: 'dot next', cx: lay.next.x, cy: y, r: 6 }, s('title', { text: `next attempt at +${formatDuration(lay.next.ms)}` })),
    );
  }
  let lastLabel = -Infinity;
  for (const p of lay.points) {
    const a = p.attempt;
    const tip = `attempt ${p.n} · ${attemptLabel(a) || 'no status'}${a.latency_ms != null ? ` · ${latency(a.latency_ms)}` : ''} · ${formatTime(a.at)} (+${formatDuration(p.ms)})`;
    svg.append(s('circle', { class: `dot ${p.ok ? 'ok' : 'fail'}`, cx: p.x, cy: y, r: 6, dataset: { n: String(p.n) } }, s('title', { text: tip })));
    if (p.x - lastLabel >= 16) {
      svg.append(s('text', { class: 'dot-label', x: p.x, y: y - 12, 'text-anchor': 'middle', text: String(p.n) }));
      lastLabel = p.x;
    }
  }
  svg.append(s('text', { class: 'axis-label', x: width - 24, y: height - 4, 'text-anchor': 'end', text: 'time since the first attempt (log scale)' }));
  return svg;
}

function attemptsTable(attempts) {
  if (!attempts.length) return h('p', { class: 'muted', text: 'No attempt yet.' });
  return h(
    'table',
    { class: 'grid attempts' },
    h('thead', {}, h('tr', {}, ...['#', 'at', 'URL', 'result', 'latency'].map((t) => h('th', { text: t })))),
    h(
      'tbody',
      {},
      ...attempts.map((a, i) =>
        h(
          'tr',
          {},
          h('td', { class: 'num', text: String(a.n ?? i + 1) }),
          h('td', { text: formatTime(a.at) }),
          h('td', { class: 'mono', text: a.url || '' }),
          h('td', {}, h('span', { class: `reply r-${attemptOK(a) ? 'ok' : 'fail'}`, text: attemptLabel(a) || '—' })),
          h('td', { class: 'num', text: latency(a.latency_ms) }),
        ),
      ),
    ),
  );
}
