// Tests of ui/assets/format.js under Node's test runner; run by
// TestUIHelpersUnderNode (go test ./frontend). Shell quoting is checked by
// running the generated commands in a real POSIX shell with a stand-in curl
// that reports the arguments and stdin it was given.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  curlCommand,
  errorLine,
  formatBytes,
  formatDuration,
  hexDump,
  parseQuery,
  prettyJSON,
  replyClass,
  replyText,
  shellQuote,
  timeline,
  attemptOK,
  attemptLabel,
} from '../ui/assets/format.js';

// sh runs script and returns its stdout as bytes.
function sh(script) {
  return execFileSync('sh', ['-c', script], { maxBuffer: 1 << 20 });
}

test('shellQuote survives a real shell', () => {
  const cases = ["it's", "a'b'c", "'", "''", '', '$(touch /tmp/pwned)', '`id`', '\\n', 'new\nline', '!history', '*', 'ünï 😀', '"double"', ' lead and trail ', '-H', '--data @/etc/passwd'];
  for (const s of cases) {
    const out = sh(`printf %s ${shellQuote(s)}`).toString('utf8');
    assert.equal(out, s, `quoted ${JSON.stringify(s)}`);
  }
});

// runCurl runs a curlCommand with curl replaced by a function that prints
// each argument NUL-terminated, then "STDIN" and what it read when the body
// comes from stdin.
function runCurl(cmd) {
  const prelude = `curl() { for a in "$@"; do printf '%s\\0' "$a"; done; if [ "$#" -gt 0 ] && eval "[ \\"\\\${$#}\\" = @- ]"; then printf 'STDIN\\0'; cat; fi; }\n`;
  const out = sh(prelude + cmd);
  const parts = [];
  let start = 0;
  for (let i = 0; i < out.length && parts[parts.length - 1] !== 'STDIN'; i++) {
    if (out[i] === 0) {
      parts.push(out.subarray(start, i).toString('utf8'));
      start = i + 1;
    }
  }
  const stdin = parts[parts.length - 1] === 'STDIN' ? out.subarray(start) : null;
  if (stdin !== null) parts.pop();
  return { args: parts, stdin };
}

const origin = 'http://127.0.0.1:8080';

test('curlCommand: a JSON POST with awkward headers', () => {
  const c = {
    method: 'POST',
    path: '/b/hook/orders',
    query: 'a=1&b=two words',
    headers: [
      ['Host', '127.0.0.1:8080'],
      ['Content-Type', 'application/json'],
      ['Content-Length', '27'],
      ['X-Quote', "it's $(id) `id`"],
      ['X-Empty', ''],
      ['X-Dup', '1'],
      ['X-Dup', '2'],
    ],
    body: '{"msg":"it\'s","n":1}\n',
  };
  const { args, stdin } = runCurl(curlCommand(c, origin));
  assert.deepEqual(args, [
    'http://127.0.0.1:8080/b/hook/orders?a=1&b=two words',
    '-H', 'Content-Type: application/json',
    '-H', "X-Quote: it's $(id) `id`",
    '-H', 'X-Empty;',
    '-H', 'X-Dup: 1',
    '-H', 'X-Dup: 2',
    '--data-binary', '{"msg":"it\'s","n":1}\n',
  ]);
  assert.equal(stdin, null);
});

test('curlCommand: methods', () => {
  const cases = [
    [{ method: 'GET', path: '/b/x' }, ['http://127.0.0.1:8080/b/x']],
    [{ method: 'DELETE', path: '/b/x' }, ['-X', 'DELETE', 'http://127.0.0.1:8080/b/x']],
    [{ method: 'PUT', path: '/b/x', body: 'v' }, ['-X', 'PUT', 'http://127.0.0.1:8080/b/x', '--data-binary', 'v']],
    [{ method: 'GET', path: '/b/x', body: 'odd' }, ['-X', 'GET', 'http://127.0.0.1:8080/b/x', '--data-binary', 'odd']],
    [{ method: 'HEAD', path: '/b/x' }, ['--head', 'http://127.0.0.1:8080/b/x']],
    [{ method: "BR'EW", path: '/b/x' }, ['-X', "BR'EW", 'http://127.0.0.1:8080/b/x']],
    [{ method: 'GET', path: '/b/x', query: 'ids[]=1&f={a}' }, ['--globoff', 'http://127.0.0.1:8080/b/x?ids[]=1&f={a}']],
    [{ method: 'GET', path: '/b/x', headers: [['Accept-Encoding', 'gzip']] }, ['http://127.0.0.1:8080/b/x', '--compressed', '-H', 'Accept-Encoding: gzip']],
  ];
  for (const [c, want] of cases) {
    assert.deepEqual(runCurl(curlCommand(c, origin)).args, want, JSON.stringify(c));
  }
});

test('curlCommand: bodies that go through stdin', () => {
  const bin = Buffer.from([0, 1, 2, 0xff, 0xfe, 39, 10, 0x80]);
  let r = runCurl(curlCommand({ method: 'POST', path: '/b/x', body_base64: bin.toString('base64'), body_encoding: 'base64' }, origin));
  assert.deepEqual(r.args, ['http://127.0.0.1:8080/b/x', '--data-binary', '@-']);
  assert.deepEqual([...r.stdin], [...bin]);

  // A leading @ would make curl read a file; a NUL cannot be an argument.
  for (const body of ['@/etc/passwd', "a\u0000b'c"]) {
    r = runCurl(curlCommand({ method: 'POST', path: '/b/x', body }, origin));
    assert.deepEqual(r.args, ['http://127.0.0.1:8080/b/x', '--data-binary', '@-']);
    assert.equal(r.stdin.toString('utf8'), body);
  }
});

test('curlCommand: a truncated body is flagged in a comment', () => {
  const cmd = curlCommand({ method: 'POST', path: '/b/x', body: 'abc', truncated: true, size: 3 }, origin);
  assert.match(cmd.split('\n')[0], /^# the captured body was truncated/);
  assert.deepEqual(runCurl(cmd).args, ['http://127.0.0.1:8080/b/x', '--data-binary', 'abc']);
});

test('hexDump', () => {
  const bytes = new Uint8Array([...Buffer.from('Hello, World!'), 0, 0xff, 0x7f, 0x41]);
  assert.equal(
    hexDump(bytes),
    '00000000  48 65 6c 6c 6f 2c 20 57  6f 72 6c 64 21 00 ff 7f  |Hello, World!...|\n' +
      '00000010  41                                                |A|',
  );
  assert.equal(hexDump(new Uint8Array(40), 16).split('\n').length, 1);
  assert.equal(hexDump(new Uint8Array(0)), '');
});

test('prettyJSON keeps literals exactly', () => {
  const src = '{"id":12345678901234567890,"f":1.50,"s":"a,b:{c}[d] \\"q\\"","e":{},"l":[ ],"n":[1,{"x":null}]}';
  assert.equal(
    prettyJSON(src),
    [
      '{',
      '  "id": 12345678901234567890,',
      '  "f": 1.50,',
      '  "s": "a,b:{c}[d] \\"q\\"",',
      '  "e": {},',
      '  "l": [],',
      '  "n": [',
      '    1,',
      '    {',
      '      "x": null',
      '    }',
      '  ]',
      '}',
    ].join('\n'),
  );
  assert.deepEqual(JSON.parse(prettyJSON(src)), JSON.parse(src));
  for (const notJSON of ['', 'hello', '"just a string"', '42', '{"a":', '{a:1}', '<html>', null]) {
    assert.equal(prettyJSON(notJSON), null, JSON.stringify(notJSON));
  }
});

test('parseQuery', () => {
  assert.deepEqual(parseQuery('a=1&b=x+y&c=%E2%9C%93&d&bad=%zz&&e='), [
    ['a', '1'],
    ['b', 'x y'],
    ['c', '✓'],
    ['d', ''],
    ['bad', '%zz'],
    ['e', ''],
  ]);
  assert.deepEqual(parseQuery(''), []);
});

test('replies', () => {
  const cases = [
    [{ status: 200 }, '200', 'ok'],
    [{ status: 302 }, '302', 'ok'],
    [{ status: 500 }, '500', 'fail'],
    [{ fault: 'reset' }, 'fault: reset', 'fail'],
    [{ smtp_code: 250 }, 'SMTP 250', 'ok'],
    [{ smtp_code: 451 }, 'SMTP 451', 'fail'],
    [null, '', 'none'],
  ];
  for (const [r, text, cls] of cases) {
    assert.equal(replyText(r), text);
    assert.equal(replyClass(r), cls);
  }
  assert.equal(attemptOK({ status: 204 }), true);
  assert.equal(attemptOK({ status: 500 }), false);
  assert.equal(attemptOK({ status: 200, error: 'timeout' }), false);
  assert.equal(attemptOK({ error: 'connection refused' }), false);
});

test('errorLine', () => {
  assert.equal(errorLine({ line: 3, message: 'x' }), 3);
  assert.equal(errorLine({ message: 'line 7: steps[0].status: must be 100-599' }), 7);
  assert.equal(errorLine({ message: 'yaml: line 12: did not find expected key' }), 12);
  assert.equal(errorLine({ message: 'no line here' }), null);
  assert.equal(errorLine(null), null);
});

test('formatting', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(10 * 1024 * 1024), '10.0 MiB');
  const d = [
    [850, '850ms'],
    [1500, '1.5s'],
    [12000, '12s'],
    [200000, '3m20s'],
    [3600e3, '1h'],
    [7500e3, '2h05m'],
    [93600e3, '1d02h'],
  ];
  for (const [ms, want] of d) assert.equal(formatDuration(ms), want);
});

test('timeline: the retry ladder on a log axis', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const at = (s) => new Date(t0 + s * 1000).toISOString();
  // Failures at 0, 9, 99, 999 s (1+t grows tenfold), then a success.
  const attempts = [
    { n: 1, at: at(0), status: 500 },
    { n: 2, at: at(9), status: 500 },
    { n: 3, at: at(99), error: 'timeout' },
    { n: 4, at: at(999), status: 503 },
    { n: 5, at: at(9999), status: 200 },
  ];
  const lay = timeline(attempts, null, 500, 20);
  assert.deepEqual(lay.points.map((p) => p.n), [1, 2, 3, 4, 5]);
  assert.deepEqual(lay.points.map((p) => p.ok), [false, false, false, false, true]);
  assert.equal(lay.points[0].x, 20);
  assert.ok(Math.abs(lay.points[4].x - 480) < 1e-9, `last x ${lay.points[4].x}`);
  const gaps = lay.points.slice(1).map((p, i) => p.x - lay.points[i].x);
  for (const g of gaps) assert.ok(Math.abs(g - gaps[0]) < 1, `gaps ${gaps} should be even on a log axis`);
  assert.equal(lay.ticks[0].label, '0');
  assert.ok(lay.ticks.some((t) => t.label === '+1m'), JSON.stringify(lay.ticks));
  for (let i = 1; i < lay.ticks.length; i++) assert.ok(lay.ticks[i].x - lay.ticks[i - 1].x >= 44);
  assert.deepEqual(lay.ticks.at(-1), { x: 480, label: '+2h47m' }, 'the axis ends with the span');

  // Unsorted input, and a next attempt after the last.
  const lay2 = timeline([attempts[2], attempts[0]], at(3600), 500, 20);
  assert.deepEqual(lay2.points.map((p) => p.n), [1, 3]);
  assert.ok(Math.abs(lay2.next.x - 480) < 1e-9);
  assert.ok(lay2.points[1].x < lay2.next.x);

  assert.deepEqual(timeline([], null, 500).points, []);
  const one = timeline([attempts[0]], null, 500, 20);
  assert.equal(one.points[0].x, 20);
  assert.equal(one.span, 0);
});

test('attemptLabel', () => {
  assert.equal(attemptLabel({ status: 200, error: null }), '200');
  assert.equal(attemptLabel({ status: 500, error: 'HTTP 500', error_class: 'http_status' }), '500');
  assert.equal(attemptLabel({ status: 503, error: 'HTTP 503' }), '503');
  assert.equal(attemptLabel({ status: 302, error: 'redirect not followed', error_class: 'redirect' }), '302 · redirect not followed');
  assert.equal(attemptLabel({ status: null, error: 'connection refused', error_class: 'connect' }), 'error: connection refused');
  assert.equal(attemptLabel({ status: 0, error: '' }), '');
  assert.equal(attemptLabel({ status: 451, error: 'SMTP 451 try later' }), '451 · SMTP 451 try later');
});
