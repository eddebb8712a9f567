// The offline-first outbox: every action is written to IndexedDB first, then sent in the order
// it was taken whenever the app is connected. An item leaves the outbox only after its PUBACK
// (MQTT, QoS 1) or a 2xx (HTTP); each keeps the ts it was taken with, so a resend after a lost
// acknowledgement is the same message and the server's idempotent writes ignore it. Fixes next
// to each other go as one array message; a photo is uploaded before the report that names it
// (it was queued first).

import { csrfHeader } from './csrf.js';

const MAX_FIXES_PER_MESSAGE = 200;
const RETRY_MS = 10_000;

/** An HTTP refusal that sending again will not change (bad body, too large, unknown). */
class Refused extends Error {}

export class Outbox extends EventTarget {
  /**
   * @param {import('idb').IDBPDatabase} db
   * @param {{publish: (topic: string, payload: string) => Promise<void>, connected: boolean}} link
   * @param {{apiPrefix: string}} options
   */
  constructor(db, link, { apiPrefix }) {
    super();
    this.db = db;
    this.link = link;
    this.apiPrefix = apiPrefix;
    this.count = 0;
    this.failed = 0;
    this.flushing = null;
    this.again = false;
    this.retry = null;
  }

  async load() {
    await this._counted();
  }

  /** Queue one action; `item.ts` is when it was taken and never changes afterwards. */
  async add(item) {
    await this.db.add('outbox', { ...item, queued_at: new Date().toISOString() });
    await this._counted();
    this.flush();
  }

  async items() {
    return this.db.getAll('outbox');
  }

  /** Send what waits, in order; at most one pass runs at a time. */
  flush() {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      try {
        do {
          this.again = false;
          await this._pass();
        } while (this.again);
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  async _pass() {
    for (;;) {
      const batch = await this._head();
      if (batch.length === 0) return;
      const first = batch[0];
      const overMqtt = first.type !== 'upload';
      if (overMqtt && !this.link.connected) return;
      try {
        await this._send(batch);
      } catch (error) {
        if (error instanceof Refused) {
          await this._fail(first, error.message);
          continue;
        }
        console.warn('outbox: will try again', error);
        this._later();
        return;
      }
      const tx = this.db.transaction('outbox', 'readwrite');
      await Promise.all([...batch.map((item) => tx.store.delete(item.seq)), tx.done]);
      await this._counted();
    }
  }

  /** The first item, or the run of fixes for one topic at the front. */
  async _head() {
    const batch = [];
    let cursor = await this.db.transaction('outbox').store.openCursor();
    while (cursor) {
      const item = cursor.value;
      if (batch.length === 0) {
        batch.push(item);
        if (item.type !== 'fix') break;
      } else if (item.type === 'fix' && item.topic === batch[0].topic && batch.length < MAX_FIXES_PER_MESSAGE) {
        batch.push(item);
      } else {
        break;
      }
      cursor = await cursor.continue();
    }
    return batch;
  }

  async _send(batch) {
    const first = batch[0];
    if (first.type === 'fix') {
      await this.link.publish(first.topic, JSON.stringify(batch.map((item) => item.fix)));
    } else if (first.type === 'upload') {
      await this._upload(first);
    } else if (first.type === 'report') {
      await this.link.publish(first.topic, JSON.stringify(await this._withUploadIds(first.payload)));
    } else {
      await this.link.publish(first.topic, JSON.stringify(first.payload));
    }
  }

  async _upload(item) {
    let response;
    try {
      response = await fetch(`${this.apiPrefix}/uploads/${item.uuid}`, {
        method: 'PUT',
        body: item.blob,
        headers: { 'Content-Type': item.blob.type || 'application/octet-stream', ...csrfHeader() },
        credentials: 'same-origin',
      });
    } catch (error) {
      throw new Error(`upload ${item.uuid}: ${error}`);
    }
    if (response.ok) {
      const body = await response.json();
      await this.db.put('uploads', { uuid: item.uuid, id: String(body.id ?? item.uuid), url: body.url ?? null });
      return;
    }
    // 408, 429 and the server's own troubles pass; anything else the same bytes will not fix.
    const passing = response.status === 408 || response.status === 429 || response.status >= 500;
    const detail = `upload ${item.uuid}: HTTP ${response.status} ${await response.text()}`;
    throw passing ? new Error(detail) : new Refused(detail);
  }

  /** The report with its photos' upload ids; a photo the server refused is left out. */
  async _withUploadIds(payload) {
    if (!payload.photos?.length) return payload;
    const photos = [];
    for (const uuid of payload.photos) {
      const uploaded = await this.db.get('uploads', uuid);
      if (uploaded) photos.push(uploaded.id);
    }
    return { ...payload, photos };
  }

  async _fail(item, reason) {
    const tx = this.db.transaction(['outbox', 'failed'], 'readwrite');
    await Promise.all([
      tx.objectStore('failed').put({ ...item, blob: undefined, reason, failed_at: new Date().toISOString() }),
      tx.objectStore('outbox').delete(item.seq),
      tx.done,
    ]);
    console.warn('outbox: refused', reason);
    await this._counted();
  }

  _later() {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.flush();
    }, RETRY_MS);
  }

  async _counted() {
    this.count = await this.db.count('outbox');
    this.failed = await this.db.count('failed');
    this.dispatchEvent(new CustomEvent('change', { detail: { count: this.count, failed: this.failed } }));
  }
}
