// The warnings panel: open SCADA alarms (GET /api/v1/alarms and the live `alarm` events),
// service-level warnings (due soon, overdue) from GET /api/v1/warnings and the live `sla`
// events, failed or impossible verifications and auto-dispatch misses from the live stream;
// newest first, a count badge, a brief highlight (never a sound) on new ones. Each names its
// task or station (a button that flies the map there); alarms and SLA warnings are
// acknowledged on the server (an acknowledged alarm stays listed until it clears), the others
// dismissed on this page.

import { ApiError, getJson, postJson } from './api.js';

const HIGHLIGHT_MS = 4000;
// What is acknowledged on the server, and where; the rest is dismissed on this page.
const ACKNOWLEDGED = {
  sla: (prefix, warning) => `${prefix}/warnings/${warning.id}/acknowledge`,
  alarm: (prefix, warning) => `${prefix}/alarms/${encodeURIComponent(warning.id)}/acknowledge`,
};
const DEBOUNCE_MS = 600;
const TIMERS = { arrival: 'arrival', completion: 'completion' };

function timeText(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** A warning of the API or an `sla` event, as the panel keeps it. */
function fromSla(warning) {
  const level = warning.level === 'overdue' ? 'Overdue' : 'Due soon';
  const timer = TIMERS[warning.timer] ?? warning.timer;
  return {
    key: `sla:${warning.id}`,
    id: warning.id,
    kind: 'sla',
    level: warning.level,
    taskId: warning.task_id,
    timer: warning.timer,
    at: Date.parse(warning.raised_at),
    title: `${level}: ${timer} ${warning.level === 'overdue' ? 'was due' : 'due'} ${timeText(warning.due_at)}`,
    detail: [warning.task?.priority, warning.task?.title, warning.crew_id].filter(Boolean).join(' · '),
  };
}

const SEVERITY = { critical: 'Critical', high: 'High', medium: 'Medium', low: 'Low' };

/** An open alarm of the API or an `alarm` event. */
function fromAlarm(alarm) {
  const value = alarm.value === null || alarm.value === undefined ? '' : ` (${alarm.value})`;
  return {
    key: `alarm:${alarm.id}`,
    id: alarm.id,
    kind: 'alarm',
    level: `alarm-${alarm.severity}`,
    state: alarm.state,
    subject: alarm.station_id,
    place: Number.isFinite(alarm.lon) && Number.isFinite(alarm.lat) ? [alarm.lon, alarm.lat] : null,
    at: Date.parse(alarm.raised_at) || Date.now(),
    title: `${SEVERITY[alarm.severity] ?? alarm.severity} alarm: ${alarm.condition}${value}`,
    detail: [
      alarm.station_name,
      `since ${timeText(alarm.since ?? alarm.raised_at)}`,
      alarm.state === 'acknowledged' ? `acknowledged by ${alarm.acknowledged_by}` : null,
    ].filter(Boolean).join(' · '),
  };
}

function fromVerification(event) {
  const failed = event.status === 'error' ? 'Verification could not run' : 'Verification failed: sent back';
  return {
    key: `verification:${event.task_id}:${event.run}`,
    kind: 'verification',
    level: 'verification',
    taskId: event.task_id,
    at: Date.now(),
    title: failed,
    detail: [event.crew_id, ...(event.reasons ?? []), event.error].filter(Boolean).join(' · '),
  };
}

function fromDispatch(event) {
  return {
    key: `dispatch:${event.task_id}:${event.at}`,
    kind: 'dispatch',
    level: 'dispatch',
    taskId: event.task_id,
    at: Date.parse(event.at) || Date.now(),
    title: 'No crew to send',
    detail: event.detail,
  };
}

/**
 * @param {HTMLElement} panel the page's #warnings element
 * @param {{api_prefix: string}} config
 * @param {{locate: (taskId: string) => void, locatePlace?: (lonLat: [number, number]) => void,
 *   onError?: (error: Error) => void}} options
 */
export function createWarningsPanel(panel, config, { locate, locatePlace, onError }) {
  const items = new Map(); // key -> warning
  const fresh = new Set(); // keys highlighted as new
  const list = panel.querySelector('.fl-warning-list');
  const badge = panel.querySelector('.fl-badge');
  const empty = panel.querySelector('.fl-empty');
  const announce = panel.querySelector('.fl-announce');
  const problem = panel.querySelector('.fl-problem');
  let timer = 0;

  const showProblem = (text) => {
    problem.textContent = text;
    problem.hidden = !text;
  };

  const row = (warning) => {
    const item = document.createElement('li');
    item.className = 'fl-warning';
    item.dataset.key = warning.key;
    item.dataset.level = warning.level;
    if (warning.taskId) item.dataset.task = warning.taskId;
    if (fresh.has(warning.key)) item.classList.add('fl-new');

    const subject = warning.taskId ?? warning.subject;
    const task = document.createElement('button');
    task.type = 'button';
    task.className = 'fl-task-link';
    task.textContent = subject;
    if (warning.kind === 'alarm') {
      task.setAttribute('aria-label', `Show station ${subject} on the map`);
      task.disabled = !warning.place;
      task.addEventListener('click', () => locatePlace?.(warning.place));
    } else {
      task.setAttribute('aria-label', `Show task ${subject} on the map`);
      task.addEventListener('click', () => locate(warning.taskId));
    }
    const title = document.createElement('span');
    title.className = 'fl-warning-title';
    title.textContent = warning.title;
    const head = document.createElement('div');
    head.className = 'fl-warning-head';
    head.append(task, title);
    item.append(head);
    if (warning.detail) {
      const detail = document.createElement('p');
      detail.className = 'fl-warning-detail';
      detail.textContent = warning.detail;
      item.append(detail);
    }
    if (warning.kind === 'alarm' && warning.state !== 'active') return item; // until it clears
    const done = document.createElement('button');
    done.type = 'button';
    done.className = 'fl-ack';
    done.textContent = ACKNOWLEDGED[warning.kind] ? 'Acknowledge' : 'Dismiss';
    done.setAttribute('aria-label', `${done.textContent} the ${warning.kind === 'alarm' ? 'alarm' : 'warning'} on ${subject}`);
    done.addEventListener('click', () => settle(warning, done));
    item.append(done);
    return item;
  };

  const render = () => {
    const sorted = [...items.values()].sort((a, b) => b.at - a.at);
    list.replaceChildren(...sorted.map(row));
    badge.textContent = String(sorted.length);
    badge.dataset.count = String(sorted.length);
    badge.setAttribute('aria-label', `${sorted.length} active`);
    empty.hidden = sorted.length > 0;
  };

  const add = (warning, { isNew }) => {
    if (warning.kind === 'sla' && warning.level === 'overdue') {
      // The overdue warning takes the place of the same timer's due-soon one.
      for (const [key, other] of items) {
        if (other.kind === 'sla' && other.taskId === warning.taskId && other.timer === warning.timer
          && other.level === 'due_soon') items.delete(key);
      }
    }
    const known = items.has(warning.key);
    items.set(warning.key, warning);
    if (isNew && !known) {
      fresh.add(warning.key);
      panel.classList.add('fl-alerting');
      announce.textContent = `New warning on ${warning.taskId ?? warning.subject}: ${warning.title}`;
      setTimeout(() => {
        fresh.delete(warning.key);
        list.querySelector(`[data-key="${CSS.escape(warning.key)}"]`)?.classList.remove('fl-new');
        if (!fresh.size) panel.classList.remove('fl-alerting');
      }, HIGHLIGHT_MS);
    }
  };

  async function settle(warning, button) {
    const url = ACKNOWLEDGED[warning.kind];
    if (!url) {
      items.delete(warning.key);
      render();
      return;
    }
    button.disabled = true;
    try {
      const answer = await postJson(url(config.api_prefix, warning));
      if (warning.kind === 'alarm' && answer?.state) items.set(warning.key, fromAlarm(answer));
      else items.delete(warning.key);
      showProblem('');
      render();
    } catch (error) {
      button.disabled = false;
      showProblem(`Not acknowledged: ${error instanceof ApiError ? error.message : 'no answer'}`);
    }
  }

  /** Everything still to act on, from the server; live-only warnings stay. */
  const load = async () => {
    try {
      const [body, alarms] = await Promise.all([
        getJson(`${config.api_prefix}/warnings?active=true`),
        getJson(`${config.api_prefix}/alarms?state=open`),
      ]);
      for (const [key, warning] of items) if (ACKNOWLEDGED[warning.kind]) items.delete(key);
      for (const warning of body.warnings) add(fromSla(warning), { isNew: false });
      for (const alarm of alarms.alarms) add(fromAlarm(alarm), { isNew: false });
      showProblem('');
      render();
    } catch (error) {
      showProblem(`Warnings not loaded: ${error.message}`);
      onError?.(error);
    }
  };

  const loadSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, DEBOUNCE_MS);
  };

  return {
    load,
    onEvent(event) {
      if (event.type === 'sla') {
        if (event.acknowledged_at) return;
        add(fromSla(event), { isNew: true });
      } else if (event.type === 'alarm') {
        if (event.state === 'cleared') items.delete(`alarm:${event.id}`);
        else add(fromAlarm(event), { isNew: event.action === 'raise' });
      } else if (event.type === 'verification' && event.alert) {
        add(fromVerification(event), { isNew: true });
      } else if (event.type === 'dispatch') {
        add(fromDispatch(event), { isNew: true });
      } else if (event.type === 'task') {
        loadSoon(); // a timer may have stopped (arrived, completed, cancelled)
        return;
      } else {
        return;
      }
      render();
    },
    /** The warnings as listed, newest first. */
    list: () => [...items.values()].sort((a, b) => b.at - a.at)
      .map(({ key, kind, level, taskId, subject }) => ({ key, kind, level, taskId, subject })),
  };
}
