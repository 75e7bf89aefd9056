// The scenario editor: a bin's script as YAML in a textarea with line
// numbers; Save sends it with PUT, and a refused script has its line marked
// and selected.

import { api } from './api.js';
import { h, fill } from './dom.js';
import { errorLine } from './format.js';

const example = `# How this bin answers, one step per capture.
name: fail-3-then-ok
steps:
  - status: 500
    repeat: 3
  - status: 200
    headers: {Content-Type: application/json}
    body: '{"ok":true}'
after: last   # last | cycle | default
`;

// scenarioText is the editor's starting text for a bin's scenario, which
// the API may give as YAML text or as an object (shown as JSON, which is
// YAML too).
export function scenarioText(scenario) {
  if (scenario == null || scenario === '') return '';
  if (typeof scenario === 'string') return scenario;
  return JSON.stringify(scenario, null, 2) + '\n';
}

// scenarioEditor returns the editor's form; its edited() reports whether
// the text differs from the scenario it was built with, so that a page
// reading the bin again does not throw away what is being typed.
export function scenarioEditor(ctx, name, bin, onSaved) {
  const url = `/api/v1/bins/${encodeURIComponent(name)}/scenario`;
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const area = h('textarea', {
    class: 'mono code',
    spellcheck: 'false',
    wrap: 'off',
    autocapitalize: 'off',
    autocomplete: 'off',
    'aria-label': 'scenario YAML',
    placeholder: example,
  });
  const status = h('div', { class: 'scenario-status', role: 'status' });
  let errLine = null;

  const initial = scenarioText(bin.scenario);
  area.value = initial;

  function renderGutter() {
    const n = Math.max(1, area.value.split('\n').length);
    const lines = [];
    for (let i = 1; i <= n; i++) lines.push(h('div', { class: i === errLine ? 'ln err' : 'ln', text: String(i) }));
    fill(gutter, ...lines);
    gutter.scrollTop = area.scrollTop;
  }

  function setStatus(kind, text, field) {
    status.className = `scenario-status ${kind}`;
    fill(status, h('span', { text }), field ? h('code', { class: 'field', text: field }) : null);
  }

  function selectLine(line) {
    const lines = area.value.split('\n');
    if (line < 1 || line > lines.length) return;
    let start = 0;
    for (let i = 0; i < line - 1; i++) start += lines[i].length + 1;
    area.focus();
    area.setSelectionRange(start, start + lines[line - 1].length);
    const lh = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 3) * lh);
    gutter.scrollTop = area.scrollTop;
  }

  async function save(e) {
    e.preventDefault();
    errLine = null;
    setStatus('busy', 'saving…');
    try {
      const res = await api(url, { method: 'PUT', body: area.value, contentType: 'application/yaml' });
      setStatus('ok', 'Saved: the next capture gets the first step.');
      if (res && typeof res === 'object') {
        if ('name' in res && 'url' in res) onSaved({ ...bin, ...res });
        else onSaved({ ...bin, scenario: res.scenario !== undefined ? res.scenario : area.value });
      } else {
        onSaved({ ...bin, scenario: area.value });
      }
    } catch (err) {
      errLine = errorLine(err);
      setStatus('error', errLine ? `Line ${errLine}: ${err.message.replace(/^line \d+:\s*/, '')}` : err.message, err.field);
      if (errLine) selectLine(errLine);
    }
    renderGutter();
  }

  async function reset() {
    if (!confirm('Reset this bin to the default reply (200 {"ok":true})?')) return;
    try {
      await api(url, { method: 'DELETE' });
      area.value = '';
      errLine = null;
      setStatus('ok', 'Reset: every capture gets the default reply.');
      onSaved({ ...bin, scenario: null });
    } catch (err) {
      setStatus('error', err.message);
    }
    renderGutter();
  }

  area.addEventListener('input', () => {
    if (errLine) {
      errLine = null;
      status.className = 'scenario-status stale';
    }
    renderGutter();
  });
  area.addEventListener('scroll', () => (gutter.scrollTop = area.scrollTop));
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Tab' && !e.shiftKey) {
      // Two spaces, as YAML wants; Shift+Tab still leaves the field.
      e.preventDefault();
      area.setRangeText('  ', area.selectionStart, area.selectionEnd, 'end');
      renderGutter();
    } else if ((e.ctrlKey || e.metaKey) && e.key === 's') {
      save(e);
    }
  });

  renderGutter();
  const form = h(
    'form',
    { class: 'scenario', onsubmit: save },
    h('p', { class: 'muted', text: 'A script of replies, one step per capture (YAML or JSON). Ctrl+S saves.' }),
    h('div', { class: 'editor' }, gutter, area),
    status,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save scenario'),
      h('button', { type: 'button', onclick: () => { area.value = example; renderGutter(); } }, 'Insert example'),
      h('button', { type: 'button', class: 'danger', onclick: reset }, 'Reset to default'),
    ),
  );
  form.edited = () => area.value !== initial;
  return form;
}
