// One bin: its captures arriving live on the left, the selected capture's
// detail on the right; a Scenario tab with the script editor.

import { api, download } from './api.js';
import { h, binPath, capturePath, frameBatch, debounce, copyText, fill } from './dom.js';
import { formatBytes, formatTime, replyText, replyClass } from './format.js';
import { captureDetail } from './capture.js';
import { scenarioEditor } from './scenario.js';

// At most this many captures stay in the list; older ones come back with
// "Load older".
const maxRows = 500;
const pageSize = 100;

export function binView(ctx, r) {
  const name = r.bin;
  const binURL = `/api/v1/bins/${encodeURIComponent(name)}`;
  let bin = null;
  let items = []; // captures, newest (highest id) first
  const byId = new Map();
  const rows = new Map(); // id -> <li>
  const fromEvent = new Set(); // ids whose row was drawn from a live event
  let next = null; // cursor for older captures
  let selected = r.capture || null;
  let query = '';
  let kind = '';
  let missed = 0; // live captures not shown because a search is active
  let listFilter = '\u0000'; // the search and kind the list was read with
  let tab = 'captures';
  let detail = null;
  let gone = false;

  // Header.
  const title = h('h1', {}, h('span', { class: 'muted', text: 'bin ' }), h('span', { text: name }));
  const meta = h('div', { class: 'bin-meta' });
  const tabCaptures = h('button', { type: 'button', class: 'tab active', onclick: () => showTab('captures') }, 'Captures');
  const tabScenario = h('button', { type: 'button', class: 'tab', onclick: () => showTab('scenario') }, 'Scenario');
  const actions = h(
    'div',
    { class: 'actions' },
    h('button', { type: 'button', onclick: exportHAR }, 'Export HAR'),
    h('button', { type: 'button', onclick: clearCaptures }, 'Clear'),
    h('button', { type: 'button', class: 'danger', onclick: deleteBin }, 'Delete bin'),
  );
  const head = h('div', { class: 'bin-head' }, h('div', {}, title, meta), actions);
  const tabs = h('div', { class: 'tabs' }, tabCaptures, tabScenario);

  // Captures pane.
  const search = h('input', { type: 'search', placeholder: 'search path, headers, body', 'aria-label': 'search captures', spellcheck: 'false' });
  const kindSel = h('select', { 'aria-label': 'kind' }, h('option', { value: '' }, 'all'), h('option', { value: 'http' }, 'HTTP'), h('option', { value: 'email' }, 'e-mail'));
  const searchForm = h('form', { class: 'search', onsubmit: (e) => { e.preventDefault(); query = search.value.trim(); kind = kindSel.value; loadList(); } }, search, kindSel, h('button', { type: 'submit' }, 'Search'));
  const notice = h('button', { type: 'button', class: 'notice', hidden: true, onclick: () => { search.value = ''; kindSel.value = ''; query = ''; kind = ''; loadList(); } });
  const list = h('ul', { class: 'captures', 'aria-label': 'captures' });
  const more = h('button', { type: 'button', class: 'more', hidden: true, onclick: loadOlder }, 'Load older');
  const emptyList = h('div', { class: 'empty', hidden: true });
  const listPane = h('div', { class: 'pane list-pane' }, searchForm, notice, list, emptyList, more);
  const detailPane = h('div', { class: 'pane detail-pane' });
  const split = h('div', { class: 'split' }, listPane, detailPane);
  const scenarioPane = h('div', { class: 'scenario-pane', hidden: true });

  const el = h('section', { class: 'page bin-page' }, head, tabs, split, scenarioPane);

  function showTab(t) {
    tab = t;
    tabCaptures.classList.toggle('active', t === 'captures');
    tabScenario.classList.toggle('active', t === 'scenario');
    split.hidden = t !== 'captures';
    scenarioPane.hidden = t !== 'scenario';
    // The editor shows the bin's scenario as last read, unless its text is
    // being edited: reading the bin again (the stream resuming, a change to
    // the bin) or coming back to the tab must not throw that away.
    const editor = scenarioPane.firstChild;
    if (t === 'scenario' && bin && !(editor && editor.edited())) {
      fill(scenarioPane, scenarioEditor(ctx, name, bin, (b) => { bin = b; renderMeta(); }));
    }
  }

  function renderMeta() {
    if (!bin) return;
    const copy = (text, label) => h('button', { type: 'button', class: 'small', title: `copy ${label}`, onclick: async (e) => { e.target.textContent = (await copyText(text)) ? 'copied' : 'copy failed'; setTimeout(() => (e.target.textContent = 'copy'), 1200); } }, 'copy');
    fill(meta, 
      bin.url ? h('span', { class: 'meta-item' }, h('span', { class: 'muted', text: 'URL ' }), h('code', { class: 'bin-url', text: bin.url }), ' ', copy(bin.url, 'URL')) : null,
      bin.email ? h('span', { class: 'meta-item' }, h('span', { class: 'muted', text: 'e-mail ' }), h('code', { text: bin.email }), ' ', copy(bin.email, 'address')) : null,
      h('span', { class: 'meta-item' }, h('span', { class: 'muted', text: 'captures ' }), h('strong', { class: 'bin-count', text: String(bin.capture_count ?? items.length) })),
      bin.scenario ? h('span', { class: 'meta-item badge', text: 'scripted' }) : null,
    );
  }

  function rowFor(c) {
    let li = rows.get(c.id);
    if (li) return li;
    const label = c.kind === 'email' ? (c.email && c.email.subject) || c.subject || c.path || '(e-mail)' : (c.path || '/') + (c.query ? '?' + c.query : '');
    const reply = replyText(c.reply);
    li = h(
      'li',
      { dataset: { id: String(c.id) } },
      h(
        'a',
        { href: capturePath(name, c.id) },
        h('span', { class: `method m-${c.kind === 'email' ? 'email' : String(c.method || '').toLowerCase()}`, text: c.kind === 'email' ? 'MAIL' : c.method || '' }),
        h('span', { class: 'path', text: label, title: label }),
        h('span', { class: 'row-meta' },
          reply ? h('span', { class: `reply r-${replyClass(c.reply)}`, text: reply }) : null,
          h('span', { class: 'size', text: formatBytes(c.size) }),
          h('time', { text: formatTime(c.received_at), datetime: c.received_at || '' }),
        ),
      ),
    );
    rows.set(c.id, li);
    return li;
  }

  const renderList = frameBatch(() => {
    if (items.length > maxRows) {
      for (const c of items.slice(maxRows)) {
        byId.delete(c.id);
        rows.delete(c.id);
        fromEvent.delete(c.id);
      }
      items = items.slice(0, maxRows);
      next = items.length ? String(items[items.length - 1].id) : next;
    }
    list.replaceChildren(...items.map(rowFor));
    for (const [id, li] of rows) li.classList.toggle('sel', String(id) === String(selected));
    more.hidden = !next;
    emptyList.hidden = items.length > 0;
    fill(emptyList, 
      query || kind
        ? h('p', { text: 'No capture matches.' })
        : [h('p', { text: 'Nothing captured yet. Try:' }), h('pre', { class: 'mono', text: bin && bin.url ? `curl -d '{"hello":"world"}' ${bin.url}` : `curl -d '{"hello":"world"}' ${location.origin}/b/${name}` })],
    );
    notice.hidden = missed === 0;
    notice.textContent = `${missed} new capture${missed === 1 ? '' : 's'} — clear the search to see them`;
    renderMeta();
  });

  function add(c, live) {
    if (byId.has(c.id)) return;
    byId.set(c.id, c);
    // Keep newest first; live events come in order, a page load may not.
    if (!items.length || c.id > items[0].id) items.unshift(c);
    else {
      let i = items.findIndex((x) => x.id < c.id);
      if (i < 0) i = items.length;
      items.splice(i, 0, c);
    }
    if (live) {
      fromEvent.add(c.id);
      const li = rowFor(c);
      li.classList.add('fresh');
      setTimeout(() => li.classList.remove('fresh'), 1500);
    }
  }

  function listURL(before) {
    const p = new URLSearchParams({ limit: String(pageSize) });
    if (before) p.set('before', before);
    if (kind) p.set('kind', kind);
    if (query) p.set('q', query);
    return `${binURL}/captures?${p}`;
  }

  // putPage puts the newest page of the list (data, read with
  // listURL(null)) in place. Captures the list holds that are newer than
  // the page came live while it was read and stay, unless the filter
  // changed. With merge (the list was read before, with the same filter)
  // the held captures stay too when they join the page without a hole;
  // otherwise more came than one page holds, and the older ones are a
  // "Load older" away.
  function putPage(data, merge) {
    const page = (data && data.items) || [];
    const full = !!(data && data.next != null);
    let pageMin = Infinity;
    let pageMax = 0;
    for (const c of page) {
      pageMin = Math.min(pageMin, c.id);
      pageMax = Math.max(pageMax, c.id);
    }
    const filter = `${query}\u0000${kind}`;
    const same = filter === listFilter;
    const joined = merge && same && (!full || items.some((c) => c.id >= pageMin && c.id <= pageMax));
    const keep = joined ? items : same && !query && !kind ? items.filter((c) => c.id > pageMax) : [];
    const kept = new Set(keep.map((c) => c.id));
    // A row drawn from a live event is drawn again from the page, which
    // has every field (a capture event has no query); others stay as they
    // are.
    for (const c of page) {
      if (fromEvent.has(c.id)) {
        rows.delete(c.id);
        fromEvent.delete(c.id);
      }
    }
    const fromPage = new Set(page.map((c) => c.id));
    for (const id of [...rows.keys()]) {
      if (!kept.has(id) && !fromPage.has(id)) {
        rows.delete(id);
        fromEvent.delete(id);
      }
    }
    items = [];
    byId.clear();
    for (const c of page) add(c, false);
    for (const c of keep) add(c, false);
    if (!(joined && full)) next = full ? String(data.next) : null;
    listFilter = filter;
    if (!merge) missed = 0;
    renderList();
  }

  async function loadList() {
    try {
      putPage(await api(listURL(null)), false);
    } catch (err) {
      ctx.notify(err);
    }
  }

  // loadNewest reads the newest page again after a (re)connection: what
  // was committed while the page had no stream, or before its stream was
  // subscribed, joins the list.
  async function loadNewest() {
    if (query || kind) return loadList();
    try {
      putPage(await api(listURL(null)), true);
    } catch (err) {
      ctx.notify(err);
    }
  }

  async function loadOlder() {
    if (!next) return;
    try {
      const data = await api(listURL(next));
      for (const c of (data && data.items) || []) add(c, false);
      next = data && data.next != null ? String(data.next) : null;
      renderList();
    } catch (err) {
      ctx.notify(err);
    }
  }

  async function loadBin() {
    try {
      bin = await api(binURL);
      renderMeta();
      if (tab === 'scenario') showTab('scenario');
    } catch (err) {
      if (err.status === 404) {
        markGone('This bin does not exist (yet). It is created by its first capture, or with "Create bin" on the bins page.');
      } else {
        ctx.notify(err);
      }
    }
  }
  const reloadBin = debounce(loadBin, 300);

  function markGone(text) {
    gone = true;
    fill(detailPane, h('div', { class: 'empty' }, h('p', { text }), h('p', {}, h('a', { href: '/bins', text: 'All bins' }))));
  }

  function showDetail() {
    if (detail && detail.destroy) detail.destroy();
    detail = null;
    if (gone) return;
    if (!selected) {
      fill(detailPane, h('div', { class: 'empty' }, h('p', { text: 'Select a capture to see its headers, body and reply.' })));
      return;
    }
    detail = captureDetail(ctx, name, selected);
    fill(detailPane, detail.el);
  }

  async function exportHAR() {
    try {
      await download(`${binURL}/export.har`, `${name}.har`);
    } catch (err) {
      ctx.notify(err);
    }
  }

  async function clearCaptures() {
    if (!confirm(`Delete every capture of "${name}"?`)) return;
    try {
      await api(`${binURL}/captures`, { method: 'DELETE' });
      if (bin) bin.capture_count = 0;
      selected = null;
      ctx.navigate(binPath(name));
      await loadList();
      showDetail();
    } catch (err) {
      ctx.notify(err);
    }
  }

  async function deleteBin() {
    if (!confirm(`Delete bin "${name}" and all its captures?`)) return;
    try {
      await api(binURL, { method: 'DELETE' });
      ctx.navigate('/bins');
    } catch (err) {
      ctx.notify(err);
    }
  }

  loadBin();
  loadList();
  showDetail();

  return {
    el,
    title: name,
    update(nr) {
      selected = nr.capture || null;
      if (tab !== 'captures') showTab('captures');
      renderList();
      showDetail();
    },
    onEvent(ev) {
      if (ev.type === 'capture' && ev.bin === name) {
        if (bin) bin.capture_count = (bin.capture_count || 0) + 1;
        if (gone) {
          gone = false;
          reloadBin();
          showDetail();
        }
        if (query || (kind && kind !== ev.kind)) missed++;
        else add(ev, true);
        renderList();
      } else if (ev.type === 'bin' && ev.name === name) {
        if (ev.action === 'cleared') {
          items = [];
          byId.clear();
          rows.clear();
          fromEvent.clear();
          next = null;
          if (bin) bin.capture_count = 0;
          renderList();
          reloadBin();
        } else if (ev.action === 'deleted') {
          items = [];
          byId.clear();
          rows.clear();
          fromEvent.clear();
          next = null;
          renderList();
          markGone('This bin was deleted.');
        } else {
          gone = false;
          reloadBin();
        }
      }
    },
    onResume() {
      reloadBin();
      loadNewest();
    },
    destroy() {
      if (detail && detail.destroy) detail.destroy();
      reloadBin.cancel();
    },
  };
}
