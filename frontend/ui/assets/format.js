// Pure helpers: formatting, shell quoting, hex dumps, JSON re-indenting and
// the timeline's geometry. Nothing here touches the DOM, so the module also
// runs under Node for the package's tests.

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special, and a single quote is written as '\''.
export function shellQuote(s) {
  return "'" + String(s).replaceAll("'", "'\\''") + "'";
}

// Headers that curl computes itself, or that would be wrong to resend.
const curlSkip = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

// curlCommand is a shell command that sends the captured HTTP request again
// to origin (the server's scheme://host:port). Every value from the capture
// is single-quoted; a binary body (or one curl would misread, such as a
// leading '@' or a NUL) goes through stdin.
export function curlCommand(c, origin) {
  const url = origin + (c.path || '/') + (c.query ? '?' + c.query : '');
  const method = c.method || 'GET';
  let stdin = null; // a shell pipeline that writes the body to stdout
  let data = null;  // the body as one argument
  if (c.body_base64) {
    stdin = 'printf %s ' + shellQuote(c.body_base64) + ' | base64 -d';
  } else if (c.body) {
    if (c.body.startsWith('@') || c.body.includes('\u0000')) {
      stdin = 'printf %s ' + shellQuote(bytesToBase64(new TextEncoder().encode(c.body))) + ' | base64 -d';
    } else {
      data = c.body;
    }
  }
  const hasBody = stdin !== null || data !== null;
  const args = ['curl'];
  if (method === 'HEAD') {
    args.push('--head');
  } else if (!(method === 'GET' && !hasBody) && !(method === 'POST' && hasBody)) {
    args.push('-X', shellQuote(method));
  }
  if (/[[\]{}]/.test(url)) args.push('--globoff');
  args.push(shellQuote(url));
  for (const [name, value] of c.headers || []) {
    const lower = String(name).toLowerCase();
    if (curlSkip.has(lower)) continue;
    if (lower === 'accept-encoding' && !args.includes('--compressed')) args.push('--compressed');
    // "Name;" is how curl sends a header with an empty value ("Name:" would remove it).
    args.push('-H', shellQuote(value === '' ? `${name};` : `${name}: ${value}`));
  }
  if (data !== null) args.push('--data-binary', shellQuote(data));
  if (stdin !== null) args.push('--data-binary', '@-');
  let cmd = args.join(' ');
  if (stdin !== null) cmd = stdin + ' | ' + cmd;
  if (c.truncated) cmd = '# the captured body was truncated: this sends only its first ' + (c.size ?? '') + ' bytes kept\n' + cmd;
  return cmd;
}

// base64ToBytes decodes standard base64 (whitespace ignored).
export function base64ToBytes(b64) {
  const bin = atob(String(b64).replace(/\s+/g, ''));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

// hexDump renders bytes as lines of "offset  hex bytes  |ascii|", at most
// limit bytes; the caller says when more were left out.
export function hexDump(bytes, limit = 64 * 1024) {
  const n = Math.min(bytes.length, limit);
  const lines = [];
  for (let off = 0; off < n; off += 16) {
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += ' ';
      if (off + i < n) {
        const b = bytes[off + i];
        hex += b.toString(16).padStart(2, '0') + ' ';
        ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
      } else {
        hex += '   ';
      }
    }
    lines.push(off.toString(16).padStart(8, '0') + '  ' + hex + ' |' + ascii + '|');
  }
  return lines.join('\n');
}

// prettyJSON re-indents a JSON object or array with two spaces, keeping every
// string and number exactly as written (no float rounding of big ids). It
// returns null when text is not a JSON object or array.
export function prettyJSON(text, maxLen = 4 * 1024 * 1024) {
  if (typeof text !== 'string' || text.length > maxLen) return null;
  const t = text.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return null;
  try {
    JSON.parse(t);
  } catch {
    return null;
  }
  const pad = (n) => '  '.repeat(n);
  let out = '';
  let depth = 0;
  let inStr = false;
  let esc = false;
  for (let i = 0; i < t.length; i++) {
    const ch = t[i];
    if (inStr) {
      out += ch;
      if (esc) esc = false;
      else if (ch === '\\') esc = true;
      else if (ch === '"') inStr = false;
      continue;
    }
    switch (ch) {
      case '"':
        inStr = true;
        out += ch;
        break;
      case '{':
      case '[': {
        let j = i + 1;
        while (j < t.length && ' \t\n\r'.includes(t[j])) j++;
        if (t[j] === (ch === '{' ? '}' : ']')) {
          out += ch + t[j];
          i = j;
          break;
        }
        depth++;
        out += ch + '\n' + pad(depth);
        break;
      }
      case '}':
      case ']':
        depth--;
        out += '\n' + pad(depth) + ch;
        break;
      case ',':
        out += ',\n' + pad(depth);
        break;
      case ':':
        out += ': ';
        break;
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        break;
      default:
        out += ch;
    }
  }
  return out;
}

// formatBytes is a size for people: 512 B, 1.5 KiB, 10.0 MiB.
export function formatBytes(n) {
  if (n == null || Number.isNaN(Number(n))) return '';
  n = Number(n);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

// parseTime reads an RFC 3339 time (nanoseconds allowed) as milliseconds
// since the epoch, or NaN.
export function parseTime(s) {
  if (!s) return NaN;
  return Date.parse(String(s).replace(/(\.\d{3})\d+/, '$1'));
}

const pad2 = (n) => String(n).padStart(2, '0');

// formatTime shows a time as local "HH:MM:SS.mmm", with the date in front
// when it is not today (now is for tests).
export function formatTime(s, now = Date.now()) {
  const ms = parseTime(s);
  if (Number.isNaN(ms)) return s ? String(s) : '';
  const d = new Date(ms);
  const clock = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) return clock;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${clock}`;
}

// formatDuration is a short duration: 850ms, 12s, 3m20s, 2h05m, 1d02h.
export function formatDuration(ms) {
  if (ms == null || Number.isNaN(ms)) return '';
  const neg = ms < 0;
  ms = Math.abs(ms);
  let s;
  if (ms < 1000) s = `${Math.round(ms)}ms`;
  else if (ms < 60e3) s = `${+(ms / 1000).toFixed(ms < 10e3 ? 1 : 0)}s`;
  else if (ms < 3600e3) {
    const m = Math.floor(ms / 60e3);
    const sec = Math.round((ms % 60e3) / 1000);
    s = sec ? `${m}m${pad2(sec)}s` : `${m}m`;
  } else if (ms < 86400e3) {
    const h = Math.floor(ms / 3600e3);
    const m = Math.round((ms % 3600e3) / 60e3);
    s = m ? `${h}h${pad2(m)}m` : `${h}h`;
  } else {
    const d = Math.floor(ms / 86400e3);
    const h = Math.round((ms % 86400e3) / 3600e3);
    s = h ? `${d}d${pad2(h)}h` : `${d}d`;
  }
  return neg ? '-' + s : s;
}

// timeAgo is "12s ago" style, from a time string.
export function timeAgo(s, now = Date.now()) {
  const ms = parseTime(s);
  if (Number.isNaN(ms)) return '';
  const d = now - ms;
  if (d < 1000) return 'just now';
  return formatDuration(d).replace(/^(\d+[a-z]+).*$/, '$1') + ' ago';
}

// parseQuery splits a raw query string into [name, value] pairs, decoded
// the way a form would be ('+' is a space); a pair that does not decode is
// kept as written.
export function parseQuery(raw) {
  if (!raw) return [];
  return String(raw)
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const k = i < 0 ? p : p.slice(0, i);
      const v = i < 0 ? '' : p.slice(i + 1);
      return [decodeForm(k), decodeForm(v)];
    });
}

function decodeForm(s) {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return s;
  }
}

// replyText is how a capture's reply reads: "200", "fault: reset", "SMTP 451".
export function replyText(reply) {
  if (!reply) return '';
  if (reply.fault) return `fault: ${reply.fault}`;
  if (reply.smtp_code) return `SMTP ${reply.smtp_code}`;
  if (reply.status) return String(reply.status);
  return '';
}

// replyClass sorts a reply into ok / fail / none, for colour.
export function replyClass(reply) {
  if (!reply) return 'none';
  if (reply.fault) return 'fail';
  const code = reply.status || reply.smtp_code;
  if (!code) return 'none';
  if (reply.smtp_code) return code < 400 ? 'ok' : 'fail';
  return code >= 200 && code < 400 ? 'ok' : 'fail';
}

// errorLine finds the line an API error points at: its "line" field, or
// "line N" in its message; null when there is none.
export function errorLine(err) {
  if (!err) return null;
  if (Number.isInteger(err.line) && err.line > 0) return err.line;
  const m = /\bline (\d+)\b/.exec(err.message || '');
  return m ? Number(m[1]) : null;
}

// headerValue is the first value of a header, case-insensitively.
export function headerValue(headers, name) {
  const want = name.toLowerCase();
  for (const [n, v] of headers || []) if (String(n).toLowerCase() === want) return v;
  return null;
}

// attemptOK is whether a sender attempt succeeded (a 2xx and no error).
// attemptLabel is an attempt's result in a few characters: its status
// ("500"), the status and the error when the error says more than the
// status ("500 · connection reset"), or the error alone ("error: timeout").
export function attemptLabel(a) {
  const status = a.status ? String(a.status) : '';
  if (!a.error) return status;
  if (status && (a.error_class === 'http_status' || a.error === `HTTP ${status}`)) return status;
  return status ? `${status} · ${a.error}` : `error: ${a.error}`;
}

export function attemptOK(a) {
  return !a.error && a.status >= 200 && a.status < 300;
}

// Tick candidates for the timeline axis, in milliseconds.
const ticks = [0, 1e3, 5e3, 15e3, 60e3, 5 * 60e3, 15 * 60e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];

// timeline lays out one delivery's attempts on a horizontal axis of width
// px (with pad px at each end). Time runs on a logarithmic scale from the
// first attempt, so that an exponential retry ladder (seconds, then minutes,
// then hours) reads as evenly spaced steps. next is the next attempt's time
// (or null). It returns {points:[{x, n, ok, at, ms, attempt}], next:{x, ms}
// | null, ticks:[{x, label}], span}.
export function timeline(attempts, next, width, pad = 16) {
  const pts = (attempts || [])
    .map((a) => ({ attempt: a, t: parseTime(a.at) }))
    .filter((p) => !Number.isNaN(p.t))
    .sort((a, b) => a.t - b.t);
  const nextT = parseTime(next);
  if (pts.length === 0) return { points: [], next: null, ticks: [], span: 0 };
  const t0 = pts[0].t;
  let span = pts[pts.length - 1].t - t0;
  if (!Number.isNaN(nextT)) span = Math.max(span, nextT - t0);
  const f = (ms) => Math.log1p(Math.max(0, ms) / 1000);
  const inner = Math.max(1, width - 2 * pad);
  const x = (ms) => (span > 0 ? pad + (f(ms) / f(span)) * inner : pad);
  const out = {
    points: pts.map((p, i) => ({
      x: x(p.t - t0),
      n: p.attempt.n ?? i + 1,
      ok: attemptOK(p.attempt),
      at: p.attempt.at,
      ms: p.t - t0,
      attempt: p.attempt,
    })),
    next: Number.isNaN(nextT) ? null : { x: x(nextT - t0), ms: nextT - t0 },
    ticks: [],
    span,
  };
  let lastX = -Infinity;
  for (const t of ticks) {
    if (t > span) break;
    const tx = x(t);
    if (tx - lastX < 44) continue;
    out.ticks.push({ x: tx, label: t === 0 ? '0' : '+' + formatDuration(t) });
    lastX = tx;
  }
  // The end of the axis says how long the ladder is.
  if (span > 0 && x(span) - lastX >= 44) out.ticks.push({ x: x(span), label: '+' + formatDuration(span) });
  return out;
}
