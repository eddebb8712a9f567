// The crew's handheld app: sign in, the task inbox with one-tap statuses, a small map, field
// reports with a photo, GPS while a task is open; every action goes through the outbox, so the
// app works the same with or without network. `window.fieldlineCrew` is the running app.

import 'maplibre-gl/dist/maplibre-gl.css';
import './crew.css';

import { openStore } from './db.js';
import { Gps, intervalFor, metresBetween } from './gps.js';
import { Link } from './link.js';
import { Outbox } from './outbox.js';
import { wireReportForm } from './report.js';
import { endWebSession } from './csrf.js';
import { signIn, SignInRefused } from './signIn.js';
import { TaskBook } from './tasks.js';
import { renderTasks } from './taskList.js';
import { TaskMap } from './taskMap.js';

const PROGRESS_EVERY_MS = 15_000;
// After a tap, give the gateway a moment to apply the status before asking for progress.
const PROGRESS_AFTER_STATUS_MS = 3000;
// The way to the selected task is asked again once the crew has moved this far, or this long
// after the last ask: not on every fix. Offline the last answer stays drawn.
const ROUTE_MOVED_M = 50;
const ROUTE_EVERY_MS = 60_000;
// While the crew is still to get to the site.
const ROUTE_STATES = ['assigned', 'accepted', 'en_route'];
const config = JSON.parse(document.getElementById('fieldline-config').textContent);
const $ = (selector) => document.querySelector(selector);

/** A random UUID also where crypto.randomUUID is missing (pages not served over HTTPS). */
function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function registerWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(config.sw_url, { scope: config.scope }).catch((error) => {
    console.warn('service worker not registered:', error.message);
  });
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

class CrewApp {
  constructor(db, session) {
    this.db = db;
    this.session = session;
    this.config = config;
    this.link = new Link(session.mqtt);
    this.outbox = new Outbox(db, this.link, { apiPrefix: config.api_prefix });
    this.book = new TaskBook(db);
    this.gps = new Gps(async (fix) => {
      await this.outbox.add({ type: 'fix', topic: session.mqtt.topics.position, ts: fix.ts, fix });
      await db.put('kv', fix.ts, 'last_fix_ts');
    });
    this.map = new TaskMap($('#map'), config);
    this.progressTimer = null;
    this.route = null; // the last answer: { task_id, from: [lon, lat], feature }
    this.routeAsked = null; // the last ask: { task_id, from, at_ms }
    this.routing = false;
  }

  async start() {
    $('#crew-name').textContent = this.session.crew_name || this.session.crew_id;
    $('#work').hidden = false;
    $('#sign-in').hidden = true;
    this.link.addEventListener('state', (event) => this._linkState(event.detail.state));
    this.link.addEventListener('message', (event) => {
      if (event.detail.topic === this.session.mqtt.topics.inbox) this.book.apply(event.detail.message);
    });
    this.outbox.addEventListener('change', (event) => this._outboxCount(event.detail));
    this.book.addEventListener('change', () => this._render());
    this.gps.addEventListener('position', (event) => this._position(event.detail));
    this.gps.addEventListener('error', (event) => {
      $('#position').textContent = `No position: ${event.detail.message}`;
    });
    window.addEventListener('online', () => {
      this.outbox.flush();
      this.refresh();
    });
    wireReportForm($('#report-form'), (values) => this.report(values));
    // The interval runs on across a reload: the gateway drops fixes closer than it allows.
    this.gps.lastFixMs = Date.parse((await this.db.get('kv', 'last_fix_ts')) ?? '') || 0;
    await this.outbox.load();
    this.route = (await this.db.get('kv', 'route')) ?? null;
    await this.book.load();
    this.link.start();
    this.refresh();
    this.progressTimer = setInterval(() => {
      this.loadProgress();
      this.updateRoute();
    }, PROGRESS_EVERY_MS);
  }

  stop() {
    this.link.stop();
    this.gps.stop();
    clearInterval(this.progressTimer);
  }

  /** The crew's tasks from the server (when it can be reached). */
  async refresh() {
    if (!this.session.tasks_url || !navigator.onLine) return;
    try {
      const body = await getJson(this.session.tasks_url);
      const tasks = Array.isArray(body) ? body : (body.tasks ?? []);
      await this.book.replace(tasks, await this.pendingStates());
      await this.loadProgress();
    } catch (error) {
      console.warn('tasks not refreshed:', error.message);
    }
  }

  /** The latest status per task that still waits in the outbox. */
  async pendingStates() {
    const states = new Map();
    for (const item of await this.outbox.items()) {
      if (item.type === 'status') states.set(item.task_id, item.status);
    }
    return states;
  }

  async loadProgress() {
    const task = this.book.get(this.book.selected);
    if (!task || !navigator.onLine) return;
    try {
      const progress = await getJson(`${config.api_prefix}/tasks/${encodeURIComponent(task.id)}/progress`);
      await this.book.put({ id: task.id, progress });
    } catch (error) {
      console.warn('progress not loaded:', error.message);
    }
  }

  /** The route drawn for `task`: the last answer for it, while the crew is still to get there. */
  routeFor(task) {
    if (!task || !ROUTE_STATES.includes(task.state) || this.route?.task_id !== task.id) return null;
    return this.route;
  }

  /** Ask for the way to the selected task when it is newly selected, the crew has moved
   * ROUTE_MOVED_M since the last ask, or ROUTE_EVERY_MS have passed. */
  async updateRoute() {
    const task = this.book.get(this.book.selected);
    const position = this.gps.latest;
    if (!task || !ROUTE_STATES.includes(task.state) || !position || !navigator.onLine || this.routing) return;
    const from = [position.coords.longitude, position.coords.latitude];
    const last = this.routeAsked?.task_id === task.id ? this.routeAsked : null;
    if (last && Date.now() - last.at_ms < ROUTE_EVERY_MS && metresBetween(last.from, from) < ROUTE_MOVED_M) return;
    this.routing = true;
    this.routeAsked = { task_id: task.id, from, at_ms: Date.now() };
    try {
      const url = `${config.api_prefix}/tasks/${encodeURIComponent(task.id)}/route?from=${from[0].toFixed(6)},${from[1].toFixed(6)}`;
      const feature = await getJson(url);
      this.route = { task_id: task.id, from, feature };
      // Kept for a reload with no network.
      await this.db.put('kv', this.route, 'route');
    } catch (error) {
      console.warn('route not loaded:', error.message);
      return;
    } finally {
      this.routing = false;
    }
    this._render();
  }

  async status(task, status, note) {
    const position = this.gps.latest;
    const payload = { status, ts: new Date().toISOString() };
    if (note) payload.note = note;
    if (position) Object.assign(payload, { lat: position.coords.latitude, lon: position.coords.longitude });
    const topic = this.session.mqtt.topics.status.replace('{task_id}', task.id);
    await this.outbox.add({ type: 'status', task_id: task.id, status, topic, ts: payload.ts, payload });
    await this.book.put({ id: task.id, state: status });
    setTimeout(() => this.loadProgress(), PROGRESS_AFTER_STATUS_MS);
  }

  async report(values) {
    let position;
    try {
      position = await this.gps.current();
    } catch (error) {
      throw new Error(`No position for the report: ${error.message}`);
    }
    const ts = new Date().toISOString();
    const photos = [];
    if (values.photo) {
      const id = uuid4();
      // The photo waits in the outbox as it is (a Blob in IndexedDB), ahead of its report.
      await this.outbox.add({ type: 'upload', uuid: id, ts, blob: values.photo });
      photos.push(id);
    }
    const payload = { kind: values.kind, ts, lat: position.coords.latitude, lon: position.coords.longitude };
    if (values.asset_id) payload.asset_id = values.asset_id;
    if (values.note) payload.note = values.note;
    if (Object.keys(values.changes).length) payload.changes = values.changes;
    if (photos.length) payload.photos = photos;
    await this.outbox.add({ type: 'report', topic: this.session.mqtt.topics.reports, ts, payload });
  }

  _render() {
    if (this.book.selected === null && this.book.open().length) this.book.selected = this.book.open()[0].id;
    renderTasks(this.book, {
      list: $('#task-list'),
      empty: $('#no-tasks'),
      count: $('#task-count'),
      route: this.routeFor(this.book.get(this.book.selected)),
      onStatus: (task, status, note) => this.status(task, status, note),
      onSelect: (id) => {
        this.book.select(this.book.selected === id ? null : id);
        this.loadProgress();
      },
    });
    const selected = this.book.get(this.book.selected);
    this.map.showTask(selected, this.gps.latest);
    this.map.showRoute(this.routeFor(selected)?.feature ?? null);
    this.updateRoute();
    this.gps.track(intervalFor(this.book.open(), this.session.gps_interval_s));
  }

  _position(position) {
    const { latitude, longitude, accuracy } = position.coords;
    $('#position').textContent = `${latitude.toFixed(5)}, ${longitude.toFixed(5)} ±${Math.round(accuracy)} m`;
    this.map.showMe(position);
    this.updateRoute();
  }

  _linkState(state) {
    const link = $('#link');
    link.dataset.state = state;
    link.textContent = state;
    if (state === 'online') {
      this.outbox.flush();
      this.refresh();
    }
  }

  _outboxCount({ count, failed }) {
    const outbox = $('#outbox');
    outbox.dataset.count = String(count);
    outbox.dataset.failed = String(failed);
    outbox.textContent = `${count} waiting${failed ? ` · ${failed} refused` : ''}`;
  }
}

async function showSignIn(db, problemText) {
  const form = $('#sign-in');
  const problem = form.querySelector('.cr-problem');
  const remembered = (await db.get('kv', 'form')) ?? {};
  form.elements.crew_id.value = remembered.crew_id ?? '';
  form.elements.device_id.value = remembered.device_id ?? '';
  $('#work').hidden = true;
  form.hidden = false;
  problem.hidden = !problemText;
  problem.textContent = problemText ?? '';
  form.onsubmit = async (event) => {
    event.preventDefault();
    const crewId = form.elements.crew_id.value.trim();
    const deviceId = form.elements.device_id.value.trim();
    await db.put('kv', { crew_id: crewId, device_id: deviceId }, 'form');
    try {
      const session = await signIn(config.api_prefix, crewId, deviceId);
      await db.put('kv', session, 'session');
      await run(db, session);
    } catch (error) {
      problem.textContent = error.message;
      problem.hidden = false;
    }
  };
}

async function run(db, session) {
  const app = new CrewApp(db, session);
  window.fieldlineCrew = app;
  $('#sign-out').onclick = async () => {
    const waiting = app.outbox.count;
    if (waiting && !window.confirm(`${waiting} items still wait to be sent. Sign out anyway? They are sent after the next sign-in.`)) return;
    app.stop();
    await db.delete('kv', 'session');
    window.fieldlineCrew = null;
    await endWebSession(config.api_prefix);
    window.location.assign(`/login?next=${encodeURIComponent(config.scope)}`);
  };
  await app.start();
}

async function boot() {
  registerWorker();
  const db = await openStore();
  const session = await db.get('kv', 'session');
  if (!session) {
    await showSignIn(db);
    return;
  }
  // Signed in before: open at once (offline too), and ask the server again when it is there.
  if (navigator.onLine) {
    try {
      const fresh = await signIn(config.api_prefix, session.crew_id, session.device_id);
      await db.put('kv', fresh, 'session');
      await run(db, fresh);
      return;
    } catch (error) {
      if (error instanceof SignInRefused) {
        await db.delete('kv', 'session');
        await showSignIn(db, error.message);
        return;
      }
    }
  }
  await run(db, session);
}

boot();
