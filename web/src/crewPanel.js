// The crew panel: a click on a crew's dot (or a name in the "Crews" panel) shows the crew's
// status, members and phones, its open tasks (GET /api/v1/tasks?crew=), and a replay of its
// trace over a time range (GET /api/v1/crews/{id}/positions?since=&until=, by default the last
// two hours): the track as a line and a marker moved along it by play/pause and a slider, at
// ten or sixty times real speed.

import { getJson } from './api.js';
import { CREW_STATUSES } from './crews.js';
import { createPanel, el, topbarButton } from './panel.js';
import { OPEN_STATES } from './tasks.js';

const DEFAULT_SPAN_MS = 2 * 60 * 60 * 1000;
const STEPS = 1000; // the slider's resolution
const TRACK = '#14324a';
const MARKER = '#CC79A7';
const STATUS_TEXT = Object.fromEntries(CREW_STATUSES.map(([value, label]) => [value, label]));
const empty = () => ({ type: 'FeatureCollection', features: [] });

const pad = (n) => String(n).padStart(2, '0');
/** A Date as the value of a datetime-local input (the browser's local time). */
export function localInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function clock(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' });
}

/** Where the crew was at `at` (ms), between the fixes before and after. */
export function positionAt(fixes, at) {
  if (!fixes.length) return null;
  if (at <= fixes[0].t) return fixes[0].xy;
  const last = fixes[fixes.length - 1];
  if (at >= last.t) return last.xy;
  let lo = 0;
  let hi = fixes.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fixes[mid].t <= at) lo = mid;
    else hi = mid;
  }
  const a = fixes[lo];
  const b = fixes[hi];
  const share = b.t === a.t ? 0 : (at - a.t) / (b.t - a.t);
  return [a.xy[0] + (b.xy[0] - a.xy[0]) * share, a.xy[1] + (b.xy[1] - a.xy[1]) * share];
}

/** Room around the track, the panel's width kept free on the right unless it covers the map. */
function beside(panel, margin = 48) {
  const map = panel.parentElement.getBoundingClientRect();
  const width = panel.getBoundingClientRect().width;
  return { top: margin, bottom: margin, left: margin, right: margin + (width < map.width / 2 ? width : 0) };
}

/**
 * @param {maplibregl.Map} map (loaded, with the crews layer)
 * @param {{api_prefix: string}} config
 * @param {{locateTask?: (taskId: string) => void, onError?: (error: Error) => void}} [options]
 */
export function createCrewPanel(map, config, { locateTask, onError } = {}) {
  const replay = { fixes: [], at: 0, playing: false, frame: 0, last: 0 };
  const stop = () => {
    replay.playing = false;
    cancelAnimationFrame(replay.frame);
    play.textContent = 'Play';
    play.setAttribute('aria-pressed', 'false');
  };
  const panel = createPanel({
    id: 'crew-panel',
    title: 'Crew',
    onClose: () => {
      stop();
      map.getSource('crew-replay-track')?.setData(empty());
      map.getSource('crew-replay-marker')?.setData(empty());
    },
  });
  let crewId = null;

  // The crew's facts and tasks.
  const facts = el('div', 'fl-crew-facts');
  const tasksTitle = el('h3', '', 'Open tasks');
  const taskList = el('ul', 'fl-crew-tasks');
  taskList.setAttribute('aria-label', 'Open tasks of the crew');

  // The replay's controls.
  const replayTitle = el('h3', '', 'Trace replay');
  const range = el('div', 'fl-replay-range');
  const input = (id, label) => {
    const wrap = el('label', 'fl-field', label);
    wrap.htmlFor = id;
    const field = document.createElement('input');
    field.type = 'datetime-local';
    field.id = id;
    const box = el('div', 'fl-field-box');
    box.append(wrap, field);
    range.append(box);
    return field;
  };
  const from = input('replay-from', 'From');
  const to = input('replay-to', 'To');
  const load = el('button', 'fl-button fl-replay-load', 'Load trace');
  load.type = 'button';
  const note = el('p', 'fl-replay-note');
  note.setAttribute('aria-live', 'polite');
  const controls = el('div', 'fl-replay-controls');
  const play = el('button', 'fl-button fl-replay-play', 'Play');
  play.type = 'button';
  play.setAttribute('aria-pressed', 'false');
  const speed = document.createElement('select');
  speed.id = 'replay-speed';
  speed.className = 'fl-replay-speed';
  for (const factor of [10, 60]) speed.append(new Option(`×${factor}`, String(factor)));
  const speedLabel = el('label', 'fl-visually-hidden', 'Replay speed');
  speedLabel.htmlFor = speed.id;
  const slider = document.createElement('input');
  slider.type = 'range';
  slider.id = 'replay-slider';
  slider.className = 'fl-replay-slider';
  slider.min = '0';
  slider.max = String(STEPS);
  slider.value = '0';
  slider.setAttribute('aria-label', 'Replay time');
  const time = el('output', 'fl-replay-time');
  time.htmlFor = slider.id;
  controls.append(play, speedLabel, speed, slider, time);
  controls.hidden = true;
  panel.body.append(facts, tasksTitle, taskList, replayTitle, range, load, note, controls);

  map.addSource('crew-replay-track', { type: 'geojson', data: empty() });
  map.addSource('crew-replay-marker', { type: 'geojson', data: empty() });
  map.addLayer({
    id: 'crew-replay-track',
    type: 'line',
    source: 'crew-replay-track',
    layout: { 'line-cap': 'round', 'line-join': 'round' },
    paint: { 'line-color': TRACK, 'line-width': 3, 'line-opacity': 0.8 },
  });
  map.addLayer({
    id: 'crew-replay-marker',
    type: 'circle',
    source: 'crew-replay-marker',
    paint: {
      'circle-color': MARKER,
      'circle-radius': 8,
      'circle-stroke-color': '#1a1a1a',
      'circle-stroke-width': 2,
    },
  });

  const span = () => {
    const { fixes } = replay;
    return fixes.length ? [fixes[0].t, fixes[fixes.length - 1].t] : [0, 0];
  };

  const seek = (at, { fromSlider = false } = {}) => {
    const [start, end] = span();
    replay.at = Math.min(Math.max(at, start), end);
    const xy = positionAt(replay.fixes, replay.at);
    map.getSource('crew-replay-marker')?.setData(xy ? {
      type: 'FeatureCollection',
      features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: xy }, properties: { at: replay.at } }],
    } : empty());
    if (!fromSlider) slider.value = String(end > start ? Math.round(((replay.at - start) / (end - start)) * STEPS) : 0);
    time.textContent = replay.fixes.length ? clock(replay.at) : '';
    slider.setAttribute('aria-valuetext', time.textContent);
  };

  const tick = (now) => {
    if (!replay.playing) return;
    const elapsed = now - replay.last;
    replay.last = now;
    seek(replay.at + elapsed * Number(speed.value));
    if (replay.at >= span()[1]) {
      stop();
      return;
    }
    replay.frame = requestAnimationFrame(tick);
  };

  play.addEventListener('click', () => {
    if (replay.playing) {
      stop();
      return;
    }
    if (!replay.fixes.length) return;
    if (replay.at >= span()[1]) seek(span()[0]); // from the start again
    replay.playing = true;
    play.textContent = 'Pause';
    play.setAttribute('aria-pressed', 'true');
    replay.last = performance.now();
    replay.frame = requestAnimationFrame(tick);
  });
  slider.addEventListener('input', () => {
    const [start, end] = span();
    seek(start + ((end - start) * Number(slider.value)) / STEPS, { fromSlider: true });
  });

  const loadTrace = async () => {
    stop();
    const since = new Date(from.value);
    const until = new Date(to.value);
    if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime()) || until <= since) {
      note.textContent = 'Choose a time range whose end is after its start.';
      return;
    }
    note.textContent = 'Loading…';
    const query = new URLSearchParams({ since: since.toISOString(), until: until.toISOString() });
    try {
      const body = await getJson(`${config.api_prefix}/crews/${encodeURIComponent(crewId)}/positions?${query}`);
      const points = body.features.filter((feature) => feature.geometry.type === 'Point');
      replay.fixes = points.map((feature) => ({
        t: Date.parse(feature.properties.fix_time),
        xy: feature.geometry.coordinates,
      }));
      const line = body.features.find((feature) => feature.geometry.type === 'LineString');
      map.getSource('crew-replay-track')?.setData({ type: 'FeatureCollection', features: line ? [line] : [] });
      controls.hidden = !replay.fixes.length;
      note.textContent = replay.fixes.length
        ? `${replay.fixes.length} fixes, ${clock(replay.fixes[0].t)} – ${clock(replay.fixes[replay.fixes.length - 1].t)}`
        : 'No fixes in this range.';
      seek(span()[0]);
      if (replay.fixes.length) {
        const xs = replay.fixes.map((fix) => fix.xy[0]);
        const ys = replay.fixes.map((fix) => fix.xy[1]);
        map.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]],
          { padding: beside(panel.element), maxZoom: 17, duration: 500 });
      }
    } catch (error) {
      note.textContent = `Trace not loaded: ${error.message}`;
      onError?.(error);
    }
  };
  load.addEventListener('click', loadTrace);

  const showCrew = (crew) => {
    const status = el('p', `fl-crew-status fl-crew-${crew.status}`, STATUS_TEXT[crew.status] ?? crew.status);
    const list = el('dl', 'fl-verification-facts');
    const fact = (term, value) => {
      if (!value) return;
      const dd = el('dd');
      if (value instanceof Node) dd.append(value);
      else dd.textContent = value;
      list.append(el('dt', '', term), dd);
    };
    const phone = (number) => {
      const link = el('a', '', number);
      link.href = `tel:${number.replace(/\s+/g, '')}`;
      return link;
    };
    fact('Mode', crew.mode);
    if (crew.phone) fact('Phone', phone(crew.phone));
    for (const member of crew.members ?? []) {
      const text = el('span', '', `${member.name}${member.role === 'lead' ? ' (lead)' : ''}`);
      if (member.phone) text.append(' · ', phone(member.phone));
      fact('Member', text);
    }
    if (crew.position?.time) fact('Latest fix', clock(Date.parse(crew.position.time)));
    facts.replaceChildren(status, list);
  };

  const showTasks = (tasks) => {
    if (!tasks.length) {
      taskList.replaceChildren(el('li', 'fl-empty', 'No open tasks'));
      return;
    }
    taskList.replaceChildren(...tasks.map((task) => {
      const item = el('li', 'fl-crew-task');
      item.dataset.task = task.id;
      const button = el('button', 'fl-task-link', task.id);
      button.type = 'button';
      button.setAttribute('aria-label', `Show task ${task.id} on the map`);
      button.addEventListener('click', () => locateTask?.(task.id));
      item.append(button, document.createTextNode(` ${task.priority} · ${task.state} · ${task.title ?? task.kind}`));
      return item;
    }));
  };

  /** Opens the panel on a crew. */
  const open = async (id) => {
    stop();
    crewId = id;
    panel.heading.textContent = `Crew ${id}`;
    facts.replaceChildren(el('p', 'fl-empty', 'Loading…'));
    taskList.replaceChildren();
    controls.hidden = true;
    note.textContent = '';
    replay.fixes = [];
    map.getSource('crew-replay-track')?.setData(empty());
    map.getSource('crew-replay-marker')?.setData(empty());
    const now = new Date();
    to.value = localInput(new Date(now.getTime() + 60 * 1000)); // the minute under way included
    from.value = localInput(new Date(now.getTime() - DEFAULT_SPAN_MS));
    panel.show();
    const query = new URLSearchParams({ crew: id, state: OPEN_STATES.join(','), limit: '50' });
    try {
      const [crew, tasks] = await Promise.all([
        getJson(`${config.api_prefix}/crews/${encodeURIComponent(id)}`),
        getJson(`${config.api_prefix}/tasks?${query}`),
      ]);
      if (crewId !== id) return;
      panel.heading.textContent = `Crew ${id}: ${crew.name}`;
      showCrew(crew);
      showTasks(tasks.tasks);
    } catch (error) {
      facts.replaceChildren(el('p', 'fl-problem', `Crew not loaded: ${error.message}`));
      onError?.(error);
    }
  };

  map.on('click', 'crews', (event) => {
    const id = event.features?.[0]?.properties?.id;
    if (id) open(id);
  });
  map.on('mouseenter', 'crews', () => { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', 'crews', () => { map.getCanvas().style.cursor = ''; });

  // The "Crews" panel: every crew by name, so a crew is one keypress away too.
  const index = createPanel({ id: 'crew-list', title: 'Crews' });
  const crewList = el('ul', 'fl-crew-list');
  crewList.setAttribute('aria-label', 'Crews');
  index.body.append(crewList);
  const loadCrews = async () => {
    try {
      const body = await getJson(`${config.api_prefix}/crews`);
      crewList.replaceChildren(...body.crews.map((crew) => {
        const item = el('li');
        const button = el('button', 'fl-task-link', crew.id);
        button.type = 'button';
        button.setAttribute('aria-label', `Open crew ${crew.id}, ${crew.name}`);
        button.addEventListener('click', () => open(crew.id));
        item.append(button, document.createTextNode(` ${crew.name} · ${STATUS_TEXT[crew.status] ?? crew.status}`));
        return item;
      }));
    } catch (error) {
      crewList.replaceChildren(el('li', 'fl-problem', `Crews not loaded: ${error.message}`));
    }
  };
  topbarButton('Crews', index, loadCrews);

  return {
    open,
    close: () => panel.close(),
    loadTrace,
    /** The replay as it stands: {crew, fixes, at (ms), playing}. */
    get replay() {
      return { crew: crewId, fixes: replay.fixes.length, at: replay.at, playing: replay.playing };
    },
  };
}
