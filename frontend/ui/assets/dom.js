// DOM helpers. Text always goes in as text nodes (textContent); no helper
// here parses HTML, so captured data can never become markup.

const svgNS = 'http://www.w3.org/2000/svg';

// Attributes that take a URL; only same-origin http(s) URLs are set.
const urlAttrs = new Set(['href', 'src', 'action', 'formaction', 'xlink:href']);

function apply(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : String(v));
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'style') {
      Object.assign(el.style, v); // CSSOM: allowed under style-src 'self'
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') {
      el[k] = v;
    } else if (k.startsWith('on') || k === 'srcdoc' || k === 'innerHTML' || k === 'outerHTML') {
      throw new Error(`dom: refusing attribute ${k}`);
    } else if (urlAttrs.has(k)) {
      const safe = safeURL(v);
      if (safe) el.setAttribute(k, safe);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

// h builds an HTML element: h('a', {href: '/bins', class: 'x'}, 'text', child).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

// s builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(svgNS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

// safeURL returns u as a path or URL on this page's origin, or null for
// anything else (javascript:, data:, other hosts).
export function safeURL(u) {
  try {
    const url = new URL(String(u), location.href);
    if (url.origin !== location.origin) return null;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.pathname + url.search + url.hash;
  } catch {
    return null;
  }
}

// link is an in-app link; app.js routes clicks on it without a reload.
export function link(path, ...children) {
  return h('a', { href: path }, ...children);
}

// binPath and friends build app paths with each segment escaped.
export const binPath = (bin) => `/bins/${encodeURIComponent(bin)}`;
export const capturePath = (bin, id) => `${binPath(bin)}/captures/${encodeURIComponent(id)}`;
export const taskPath = (id) => `/tasks/${encodeURIComponent(id)}`;

// emailFrame is an iframe that shows an e-mail's HTML with sandbox="": no
// scripts, no forms, no plugins, an opaque origin, and the page's CSP
// inherited (remote images do not load). Under Trusted Types the srcdoc
// goes through the one allowed policy, which passes HTML only here.
let emailPolicy = null;
export function emailFrame(html, title) {
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', '');
  frame.setAttribute('referrerpolicy', 'no-referrer');
  frame.setAttribute('title', title || 'e-mail HTML');
  frame.className = 'email-html';
  if (window.trustedTypes && !emailPolicy) {
    emailPolicy = window.trustedTypes.createPolicy('email', { createHTML: (s) => s });
  }
  frame.srcdoc = emailPolicy ? emailPolicy.createHTML(String(html)) : String(html);
  return frame;
}

// copyText puts text on the clipboard; it reports whether that worked.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

// clear empties an element.
export function clear(el) {
  el.replaceChildren();
  return el;
}

// fill replaces an element's children the way h() adds them: strings as
// text, arrays flattened, null and false left out (the DOM's own append
// would write "null").
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// frameBatch calls fn at most once per animation frame, however often it is
// scheduled: live events arrive faster than a screen redraws.
export function frameBatch(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

// debounce calls fn once ms after the last call.
export function debounce(fn, ms) {
  let t = null;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}
