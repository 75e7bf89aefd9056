// The live stream: one websocket to /api/v1/stream for every view, with
// reconnects on a growing, jittered delay. A reconnect resumes with
// ?since=<last capture id seen>, so the server sends the captures that
// arrived in between before live events: no gap, no duplicate.

import { streamURL } from './api.js';

export class Stream {
  // onEvent(ev) gets every event; onState({state, attempt, delay, code})
  // gets "connecting" | "connected" | "reconnecting"; onResume({first})
  // runs once each connection is open, the first one included (first is
  // true then): views read again what the stream does not replay (what
  // changed between their first read and the subscription, and captures
  // missed by a page that had seen none live, so had no since).
  constructor({ onEvent, onState, onResume }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onResume = onResume;
    this.lastCaptureId = 0;
    this.attempt = 0;
    this.connectedOnce = false;
    this.ws = null;
    this.timer = null;
  }

  start() {
    this.connect();
  }

  // stop closes the stream without reconnecting: the page is going away
  // or into the back/forward cache, where it must not hold a subscriber.
  stop() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'page hidden');
  }

  // restart connects again after stop, resuming where the page left off.
  restart() {
    this.stop();
    this.attempt = 0;
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    const params = {};
    if (this.connectedOnce && this.lastCaptureId > 0) params.since = this.lastCaptureId;
    this.onState({ state: this.attempt ? 'reconnecting' : 'connecting', attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(streamURL(params));
    } catch {
      this.retry(0);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const first = !this.connectedOnce;
      this.connectedOnce = true;
      this.attempt = 0;
      this.onState({ state: 'connected', attempt: 0 });
      this.onResume({ first });
    };
    ws.onmessage = (e) => {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!ev || typeof ev !== 'object') return;
      if (ev.type === 'capture' && Number.isInteger(ev.id) && ev.id > this.lastCaptureId) {
        this.lastCaptureId = ev.id;
      }
      this.onEvent(ev);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry(e.code);
    };
  }

  retry(code) {
    this.attempt++;
    // 0.5 s, 1 s, 2 s, ... up to 15 s, each with +-25% jitter.
    const base = Math.min(15000, 500 * 2 ** (this.attempt - 1));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.onState({ state: 'reconnecting', attempt: this.attempt, delay, code });
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
