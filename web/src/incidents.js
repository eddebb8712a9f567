// Main breaks and outages: the "Incidents" panel of the top bar (GET /api/v1/incidents?state=active),
// each with its state, when it opened, how many reports it has, the customers without water once
// isolated and the estimated restoration. One picked shows its detail: its reports, the suggested
// pipes (each with "Show isolation", the trace of GET /api/v1/network/isolation drawn over the
// network with a short summary, and "Isolate this pipe", confirmed before POST .../isolate), its
// tasks (each opens the task panel) and the estimated restoration, editable (PATCH). A live
// `incident` event reads them again: a new one is highlighted (never a sound) and counted on the
// top bar button. The active incidents are the map's "Incidents" layer.

import maplibregl from 'maplibre-gl';

import { ApiError, getJson, patchJson, postJson } from './api.js';
import { createPanel, el, facts, timeText, topbarButton } from './panel.js';
import './incidents.css';

const STATE_TEXT = {
  open: 'Open: pipe not confirmed',
  isolating: 'Isolating',
  repairing: 'Repairing',
  restoring: 'Restoring',
  closed: 'Closed',
  cancelled: 'Cancelled',
};
const OPEN = '#B3261E';
const WATER_OFF = '#0072B2';
const OUTLINE = '#1a1a1a';
const ICON_PX = 22;
const LIMIT = 100;
const HIGHLIGHT_MS = 6000;
const DEBOUNCE_MS = 300;
const EMPTY = { type: 'FeatureCollection', features: [] };

// The isolation overlay: [style layer, role, style], bottom to top. The valves to close are
// numbered markers over it (the map has no glyphs to draw numbers with).
const ISOLATION = [
  ['dry', 'pipe_without_supply', {
    type: 'line', paint: { 'line-color': '#56B4E9', 'line-width': 4, 'line-dasharray': [2, 1.5] },
  }],
  ['isolated-casing', ['isolated_pipe', 'broken_pipe'], {
    type: 'line', layout: { 'line-cap': 'round' }, paint: { 'line-color': '#ffffff', 'line-width': 11 },
  }],
  ['isolated', 'isolated_pipe', {
    type: 'line', layout: { 'line-cap': 'round' }, paint: { 'line-color': '#E69F00', 'line-width': 7 },
  }],
  ['broken', 'broken_pipe', {
    type: 'line', layout: { 'line-cap': 'round' }, paint: { 'line-color': OPEN, 'line-width': 9 },
  }],
  ['meters', 'meter', {
    type: 'circle',
    paint: { 'circle-color': '#6b5ca5', 'circle-radius': 5, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1.5 },
  }],
  ['hydrants', 'hydrant', {
    type: 'circle',
    paint: { 'circle-color': '#ffffff', 'circle-radius': 6, 'circle-stroke-color': '#D55E00', 'circle-stroke-width': 3 },
  }],
];
export const ISOLATION_LAYERS = ISOLATION.map(([name]) => `incident-isolation-${name}`);
const KEYS = [
  ['Valve to close, in order', '#1a1a1a', 'valve'],
  ['Broken pipe', OPEN, 'line'],
  ['Isolated pipe', '#E69F00', 'line'],
  ['Pipe without supply', '#56B4E9', 'line dashed'],
  ['Meter without water', '#6b5ca5', 'dot'],
  ['Hydrant out of service', '#ffffff', 'dot', '#D55E00'],
];

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function errorText(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  return error.field ? `${error.field}: ${error.message}` : error.message;
}

/** An ISO time as a datetime-local input's value, in the browser's time zone. */
function localInput(iso) {
  if (!iso) return '';
  const at = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** The incident's symbol: an octagon with an exclamation mark, over a white halo. */
function symbolImage(fill, ratio) {
  const side = Math.round(ICON_PX * ratio);
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext('2d');
  const r = side * 0.44;
  context.beginPath();
  for (let i = 0; i < 8; i += 1) {
    const angle = Math.PI / 8 + (i * Math.PI) / 4;
    context.lineTo(side / 2 + r * Math.cos(angle), side / 2 + r * Math.sin(angle));
  }
  context.closePath();
  context.fillStyle = fill;
  context.fill();
  context.lineJoin = 'round';
  context.lineWidth = 3 * ratio;
  context.strokeStyle = '#ffffff';
  context.stroke();
  context.lineWidth = 1.2 * ratio;
  context.strokeStyle = OUTLINE;
  context.stroke();
  context.fillStyle = '#ffffff';
  context.fillRect(side / 2 - ratio * 1.2, side * 0.26, ratio * 2.4, side * 0.3);
  context.fillRect(side / 2 - ratio * 1.2, side * 0.64, ratio * 2.4, ratio * 2.4);
  return context.getImageData(0, 0, side, side);
}

/** The legend's keys for the incidents layer. */
export function incidentLegend() {
  return {
    keys: [
      { label: 'Open: pipe not confirmed', colour: OPEN, shape: 'incident', ring: OUTLINE },
      { label: 'Water off: isolating, repairing, restoring', colour: WATER_OFF, shape: 'incident', ring: OUTLINE },
    ],
    notes: ['Active incidents; the Incidents panel draws an isolation'],
  };
}

/** West, south, east, north of a FeatureCollection's coordinates, or null. */
function extent(collection) {
  let box = null;
  const visit = (coordinates) => {
    if (typeof coordinates[0] === 'number') {
      const [x, y] = coordinates;
      box = box ? [Math.min(box[0], x), Math.min(box[1], y), Math.max(box[2], x), Math.max(box[3], y)] : [x, y, x, y];
    } else {
      for (const inner of coordinates) visit(inner);
    }
  };
  for (const feature of collection?.features ?? []) if (feature.geometry) visit(feature.geometry.coordinates);
  return box;
}

/**
 * The isolation overlay: a trace (GET /api/v1/network/isolation's answer) drawn over the
 * network, with a summary box over the map.
 */
function createIsolationOverlay(map, { padding }) {
  const box = el('section', { id: 'isolation-summary', className: 'fl-verification fl-isolation', hidden: true, 'aria-labelledby': 'isolation-summary-title', 'aria-live': 'polite' });
  (document.querySelector('.fl-main') ?? document.body).append(box);
  const below = () => ['tasks-state', 'tasks', 'crews', 'reports', 'incidents'].find((id) => map.getLayer(id));
  map.addSource('incident-isolation', { type: 'geojson', data: EMPTY });
  for (const [name, role, style] of ISOLATION) {
    const roles = [role].flat();
    map.addLayer({
      id: `incident-isolation-${name}`,
      source: 'incident-isolation',
      filter: ['in', ['get', 'role'], ['literal', roles]],
      ...style,
    }, below());
  }
  let markers = [];
  let shown = null;

  const clear = () => {
    shown = null;
    map.getSource('incident-isolation')?.setData(EMPTY);
    for (const marker of markers) marker.remove();
    markers = [];
    box.hidden = true;
    box.replaceChildren();
  };

  const summary = (trace, title) => {
    const outOfService = trace.hydrants.length;
    const heading = el('h2', { className: 'fl-verification-title', id: 'isolation-summary-title' }, title);
    const line = el('p', 'fl-verification-result fl-isolation-totals',
      `${plural(trace.valves_to_close.length, 'valve')} to close, ${plural(trace.customers, 'customer')} without water, `
      + `${plural(outOfService, 'hydrant')} out of service`);
    const valves = el('ol', { className: 'fl-isolation-valves', 'aria-label': 'Valves to close, in order' },
      ...trace.valves_to_close.map((valve) => el('li', {}, `${valve.id}${valve.distance_m != null ? `, ${Math.round(valve.distance_m)} m` : ''}`)));
    const lengths = facts([
      ['Isolated', `${Math.round(trace.isolated_length_m)} m of pipe`],
      ['Without supply', trace.without_supply_length_m ? `${Math.round(trace.without_supply_length_m)} m more` : ''],
      ['Meters', String(trace.meters.length)],
    ], 'fl-verification-facts');
    const keys = el('ul', { className: 'fl-verification-keys', 'aria-label': 'Key' },
      ...KEYS.map(([label, colour, shape, ring]) => {
        const swatch = el('span', { className: `fl-key fl-key-${shape.split(' ').join(' fl-key-')}`, 'aria-hidden': 'true' });
        swatch.style.setProperty('--colour', colour);
        if (ring) swatch.style.setProperty('--ring', ring);
        return el('li', {}, swatch, label);
      }));
    const clearButton = el('button', { type: 'button', className: 'fl-button', 'aria-label': `Clear the isolation of ${trace.pipe_id} from the map` }, 'Clear');
    clearButton.addEventListener('click', clear);
    box.replaceChildren(heading, line, valves, lengths,
      el('details', 'fl-verification-legend', el('summary', {}, 'Key'), keys),
      el('div', 'fl-verification-actions', clearButton));
    box.dataset.pipe = trace.pipe_id;
    box.hidden = false;
  };

  const draw = (trace, title = `Isolation of ${trace.pipe_id}`) => {
    clear();
    shown = trace;
    map.getSource('incident-isolation')?.setData(trace.geojson ?? EMPTY);
    for (const feature of trace.geojson?.features ?? []) {
      if (feature.properties.role !== 'valve_to_close') continue;
      const order = feature.properties.order;
      const marker = el('div', { className: 'fl-valve-marker', role: 'img', 'aria-label': `Valve ${feature.id}, close ${order} of ${trace.valves_to_close.length}`, dataset: { valve: feature.id, order } }, String(order));
      markers.push(new maplibregl.Marker({ element: marker }).setLngLat(feature.geometry.coordinates).addTo(map));
    }
    summary(trace, title);
    const bounds = extent(trace.geojson);
    if (bounds) {
      map.fitBounds([[bounds[0], bounds[1]], [bounds[2], bounds[3]]], { padding: padding(box), maxZoom: 18, duration: 600 });
    }
  };

  return { draw, clear, get shown() { return shown; }, get markers() { return markers.length; } };
}

/**
 * @param {maplibregl.Map} map (its style loaded)
 * @param {{api_prefix: string}} config
 * @param {{openTask: (taskId: string) => void, onError?: (error: Error) => void}} options
 */
export function createIncidents(map, config, { openTask, onError }) {
  const prefix = `${config.api_prefix}/incidents`;
  const panel = createPanel({ id: 'incidents', title: 'Incidents', onClose: () => { selected = null; } });
  const announce = el('p', { className: 'fl-visually-hidden', 'aria-live': 'polite' });
  document.body.append(announce);
  const badge = el('span', { className: 'fl-badge fl-incident-count', 'aria-hidden': 'true', hidden: true });
  const button = topbarButton('Incidents', panel, () => load());
  button.append(badge);

  const known = new Map(); // id -> the incident's detail, active ones, as read last
  const fresh = new Set(); // ids highlighted as new
  let order = []; // active ids, newest first
  let selected = null; // the id whose detail the panel shows
  let problemText = '';
  let asked = 0;
  let timer = 0;

  // The layer: a symbol per active incident, red while the pipe is not confirmed.
  const ratio = Math.max(1, Math.round(window.devicePixelRatio || 1));
  map.addImage('incident-open', symbolImage(OPEN, ratio), { pixelRatio: ratio });
  map.addImage('incident-water-off', symbolImage(WATER_OFF, ratio), { pixelRatio: ratio });
  map.addSource('incidents', { type: 'geojson', data: EMPTY });
  map.addLayer({
    id: 'incidents',
    type: 'symbol',
    source: 'incidents',
    layout: {
      'icon-image': ['case', ['==', ['get', 'state'], 'open'], 'incident-open', 'incident-water-off'],
      'icon-allow-overlap': true,
      'icon-ignore-placement': true,
    },
  });

  const clearOfPanel = (box, margin = 40) => {
    const area = map.getContainer().getBoundingClientRect();
    const room = { top: margin, bottom: margin, left: margin, right: margin };
    const summary = box.getBoundingClientRect();
    if (summary.width < area.width / 2) room.left += summary.width;
    if (panel.isOpen) {
      const side = panel.element.getBoundingClientRect();
      if (side.width < area.width / 2) room.right += side.width;
      else room.bottom += Math.min(side.height, area.height * 0.5);
    }
    if (room.left + room.right > area.width * 0.66) Object.assign(room, { left: margin, right: margin });
    if (room.top + room.bottom > area.height * 0.66) Object.assign(room, { top: margin, bottom: margin });
    return room;
  };
  const overlay = createIsolationOverlay(map, { padding: clearOfPanel });

  const draw = () => {
    const features = order.map((id) => known.get(id)).filter(Boolean).map((incident) => ({
      type: 'Feature',
      id: incident.id,
      geometry: { type: 'Point', coordinates: [incident.lon, incident.lat] },
      properties: { id: incident.id, state: incident.state },
    }));
    map.getSource('incidents')?.setData({ type: 'FeatureCollection', features });
  };

  const count = () => {
    const n = order.length;
    badge.textContent = n >= LIMIT ? `${LIMIT}+` : String(n);
    badge.dataset.count = String(n);
    badge.hidden = n === 0;
    button.setAttribute('aria-label', n ? `Incidents, ${badge.textContent} active` : 'Incidents, none active');
  };

  // ---- the list ----

  const listRow = (incident) => {
    const item = el('li', { className: `fl-incident fl-incident-${incident.state}`, dataset: { incident: incident.id, state: incident.state } });
    if (fresh.has(incident.id)) item.classList.add('fl-new');
    const open = el('button', {
      type: 'button', className: 'fl-task-link fl-incident-show', dataset: { focus: `open:${incident.id}` },
      'aria-label': `Incident ${incident.id}: show its detail`,
    }, incident.id);
    open.addEventListener('click', () => select(incident.id));
    item.append(
      el('div', 'fl-warning-head', open, el('span', 'fl-incident-state', STATE_TEXT[incident.state] ?? incident.state)),
      incident.title ? el('p', 'fl-incident-title', incident.title) : null,
      facts([
        ['Opened', timeText(incident.opened_at)],
        ['Reports', String(incident.sources?.length ?? '—')],
        ['Customers', incident.customers ?? ''],
        ['Water back by', incident.estimated_restoration ? timeText(incident.estimated_restoration) : ''],
      ], 'fl-facts fl-incident-facts'),
    );
    return item;
  };

  const listView = () => {
    const refresh = el('button', { type: 'button', className: 'fl-button', dataset: { focus: 'refresh' } }, 'Refresh');
    refresh.addEventListener('click', load);
    const problem = el('p', { className: 'fl-problem', role: 'alert', hidden: !problemText }, problemText);
    const rows = order.map((id) => known.get(id)).filter(Boolean);
    const empty = el('p', { className: 'fl-empty', hidden: rows.length > 0 }, 'No active incidents');
    const list = el('ol', { className: 'fl-incident-list', 'aria-label': 'Active incidents, newest first' }, ...rows.map(listRow));
    return [el('div', 'fl-panel-tools', refresh), problem, empty, list];
  };

  // ---- one incident ----

  const showIsolation = async (pipeId, error) => {
    if (error) error.hidden = true;
    try {
      const trace = await getJson(`${config.api_prefix}/network/isolation?pipe_id=${encodeURIComponent(pipeId)}`);
      overlay.draw(trace);
      return trace;
    } catch (failure) {
      if (error) {
        error.textContent = `Isolation not shown: ${errorText(failure)}`;
        error.hidden = false;
      }
      onError?.(failure);
      throw failure;
    }
  };

  const pipeRow = (incident, pipe) => {
    const item = el('li', { className: 'fl-incident-pipe', dataset: { pipe: pipe.pipe_id } });
    const error = el('p', { className: 'fl-field-error', role: 'alert', hidden: true });
    const show = el('button', {
      type: 'button', className: 'fl-button', dataset: { focus: `show:${pipe.pipe_id}` },
      'aria-label': `Show isolation of ${pipe.pipe_id} on the map`,
    }, 'Show isolation');
    show.addEventListener('click', () => showIsolation(pipe.pipe_id, error).catch(() => {}));
    const what = [pipe.material?.replace('_', ' '), pipe.diameter_mm && `${pipe.diameter_mm} mm`,
      pipe.distance_m != null && `${Math.round(pipe.distance_m)} m away`, `score ${Number(pipe.score).toFixed(2)}`];
    item.append(
      el('div', 'fl-warning-head', el('strong', {}, pipe.pipe_id), el('span', 'fl-muted', what.filter(Boolean).join(' · '))),
      pipe.why?.length ? el('ul', { className: 'fl-incident-why', 'aria-label': `Why ${pipe.pipe_id}` }, ...pipe.why.map((reason) => el('li', {}, reason))) : null,
    );
    const controls = el('div', 'fl-actions', show);
    item.append(controls);
    if (incident.allowed_actions.includes('isolate')) {
      const isolate = el('button', {
        type: 'button', className: 'fl-button fl-danger', 'aria-expanded': 'false', dataset: { focus: `isolate:${pipe.pipe_id}` },
        'aria-label': `Isolate ${pipe.pipe_id}`,
      }, 'Isolate this pipe');
      const confirm = el('button', { type: 'button', className: 'fl-button fl-danger', dataset: { focus: `confirm:${pipe.pipe_id}` } }, 'Confirm: isolate');
      const cancel = el('button', { type: 'button', className: 'fl-button' }, 'Cancel');
      const ask = el('div', { className: 'fl-incident-confirm', role: 'group', hidden: true, 'aria-label': `Confirm isolating ${pipe.pipe_id}` },
        el('p', {}, `Isolate ${pipe.pipe_id}? A task is created for each valve to close and one for the repair; customers are told.`),
        el('div', 'fl-actions', confirm, cancel));
      const toggle = (open) => {
        ask.hidden = !open;
        isolate.setAttribute('aria-expanded', String(open));
        (open ? confirm : isolate).focus();
      };
      isolate.addEventListener('click', () => toggle(ask.hidden));
      cancel.addEventListener('click', () => toggle(false));
      ask.addEventListener('keydown', (event) => {
        if (event.key !== 'Escape') return;
        event.preventDefault();
        event.stopPropagation(); // the question closes, not the panel
        toggle(false);
      });
      confirm.addEventListener('click', async () => {
        confirm.disabled = true;
        error.hidden = true;
        try {
          const detail = await postJson(`${prefix}/${encodeURIComponent(incident.id)}/isolate`, { pipe_id: pipe.pipe_id });
          known.set(detail.id, detail);
          announce.textContent = `${incident.id} isolating ${pipe.pipe_id}: ${plural(detail.tasks.length, 'task')} created`;
          if (detail.isolation) overlay.draw(detail.isolation, `Isolation of ${pipe.pipe_id} (${incident.id})`);
          render({ focusKey: 'tasks' });
          draw();
        } catch (failure) {
          confirm.disabled = false;
          error.textContent = `Not isolated: ${errorText(failure)}`;
          error.hidden = false;
          if (failure instanceof ApiError && failure.status === 409) loadSoon();
        }
      });
      controls.append(isolate);
      item.append(ask);
    }
    item.append(error);
    return item;
  };

  const estimateForm = (incident) => {
    const id = `incident-eta-${incident.id}`;
    const input = el('input', { type: 'datetime-local', id, value: localInput(incident.estimated_restoration) });
    const save = el('button', { type: 'submit', className: 'fl-button fl-primary' }, 'Save');
    const error = el('p', { className: 'fl-field-error', id: `${id}-error`, role: 'alert', hidden: true });
    const form = el('form', { className: 'fl-form fl-incident-eta', 'aria-label': `Estimated restoration of ${incident.id}` },
      el('div', 'fl-field', el('label', { for: id }, 'Water back by'), input, error), el('div', 'fl-actions', save));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      input.removeAttribute('aria-invalid');
      error.hidden = true;
      const at = input.value ? new Date(input.value) : null;
      save.disabled = true;
      try {
        // An empty or unreadable input is sent as it is: the server names the field.
        const detail = await patchJson(`${prefix}/${encodeURIComponent(incident.id)}`, {
          estimated_restoration: at && !Number.isNaN(at.getTime()) ? at.toISOString() : input.value || null,
        });
        known.set(detail.id, detail);
        announce.textContent = `${incident.id}: water back by ${timeText(detail.estimated_restoration)}`;
        render({ focusKey: 'eta' });
      } catch (failure) {
        save.disabled = false;
        error.textContent = `Not saved: ${errorText(failure)}`;
        error.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', error.id);
        input.focus();
      }
    });
    input.dataset.focus = 'eta';
    input.dataset.shown = input.value; // what the server said: anything else is being typed
    return form;
  };

  const detailView = (incident) => {
    const back = el('button', { type: 'button', className: 'fl-button', dataset: { focus: 'back' } }, '‹ All incidents');
    back.addEventListener('click', () => {
      const was = selected;
      selected = null;
      render({ focusKey: `open:${was}` });
    });
    const parts = [el('div', 'fl-panel-tools', back)];
    parts.push(facts([
      ['State', STATE_TEXT[incident.state] ?? incident.state],
      ['Opened', timeText(incident.opened_at)],
      ['Pipe', incident.pipe_id ?? 'not confirmed'],
      ['Customers', incident.customers ?? ''],
      ['Isolated', incident.isolated_at ? timeText(incident.isolated_at) : ''],
    ], 'fl-facts fl-incident-facts'));
    if (incident.title) parts.splice(1, 0, el('p', 'fl-incident-title', incident.title));
    if (incident.isolation) {
      const error = el('p', { className: 'fl-field-error', role: 'alert', hidden: true });
      const show = el('button', { type: 'button', className: 'fl-button', dataset: { focus: 'show-isolation' } }, 'Show the isolation');
      show.addEventListener('click', () => overlay.draw(incident.isolation, `Isolation of ${incident.pipe_id} (${incident.id})`));
      parts.push(el('p', 'fl-incident-isolated',
        `${plural(incident.isolation.valves_to_close.length, 'valve')} to close, ${plural(incident.isolation.customers, 'customer')} without water, `
        + `${plural(incident.isolation.hydrants.length, 'hydrant')} out of service`), el('div', 'fl-actions', show), error);
    }
    if (incident.allowed_actions.includes('estimate')) parts.push(estimateForm(incident));
    else if (incident.estimated_restoration) parts.push(facts([['Water back by', timeText(incident.estimated_restoration)]]));

    const section = (title, id, ...content) => el('section', { className: 'fl-incident-section', 'aria-labelledby': id },
      el('h3', { id, className: 'fl-section-title', tabIndex: -1, dataset: { focus: id.split('-')[1] } }, title), ...content);
    const tasks = incident.tasks.map((task) => {
      const open = el('button', {
        type: 'button', className: 'fl-task-link', dataset: { focus: `task:${task.id}` }, 'aria-label': `Open task ${task.id}`,
      }, task.id);
      open.addEventListener('click', () => openTask(task.id));
      const what = [task.role.replace('_', ' '), task.valve_id && `${task.valve_id} (${task.order})`, task.state].filter(Boolean).join(' · ');
      return el('li', { dataset: { task: task.id } }, open, ' ', el('span', 'fl-muted', what));
    });
    parts.push(section(`Tasks (${tasks.length})`, `incident-tasks-${incident.id}`,
      tasks.length ? el('ol', { className: 'fl-incident-tasks', 'aria-label': `Tasks of ${incident.id}` }, ...tasks)
        : el('p', 'fl-muted', 'None yet: isolating a pipe creates them')));
    parts.push(section(`Suggested pipes (${incident.suggested_pipes.length})`, `incident-pipes-${incident.id}`,
      el('ol', { className: 'fl-incident-pipes', 'aria-label': `Suggested pipes for ${incident.id}, most likely first` },
        ...incident.suggested_pipes.map((pipe) => pipeRow(incident, pipe)))));
    parts.push(section(`Reports (${incident.sources.length})`, `incident-sources-${incident.id}`,
      el('ol', { className: 'fl-incident-sources' }, ...incident.sources.map((source) => el('li', {},
        el('strong', {}, source.kind === 'call' ? `Call #${source.id}` : `${source.kind.replace('_', ' ')} ${source.ref ?? ''}`),
        ` · ${timeText(source.reported_at)}`,
        source.caller?.name ? ` · ${source.caller.name}` : '',
        source.description ? el('p', 'fl-incident-note', source.description) : null)))));
    return parts;
  };

  /** Shows the list, or the incident picked; the control that had the focus keeps it. */
  let drawn = ''; // what the panel shows, so that a refresh changing nothing leaves it alone
  function render({ focusKey } = {}) {
    if (!panel.isOpen) return;
    const incident = selected && known.get(selected);
    if (selected && !incident) selected = null;
    const sig = JSON.stringify(incident ? ['detail', incident] : ['list', order.map((id) => known.get(id)), [...fresh], problemText]);
    if (sig === drawn && panel.showing === (incident ? `incident:${incident.id}` : 'incidents') && !focusKey) return;
    drawn = sig;
    const key = focusKey ?? document.activeElement?.dataset?.focus;
    // An estimate being typed survives a live refresh.
    const typing = panel.body.querySelector('[data-focus="eta"]');
    const typed = typing && typing.value !== typing.dataset.shown ? typing.value : null;
    if (incident) panel.open(`Incident ${incident.id}`, detailView(incident), { key: `incident:${incident.id}` });
    else panel.open('Incidents', listView(), { key: 'incidents' });
    const eta = panel.body.querySelector('[data-focus="eta"]');
    if (eta && typed !== null && panel.showing === `incident:${typing.id.slice('incident-eta-'.length)}`) eta.value = typed;
    const again = key && panel.body.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }

  async function select(id) {
    selected = id;
    render({ focusKey: 'back' });
    const back = panel.body.querySelector('[data-focus="back"]');
    back?.focus();
    // Closed or cancelled ones are not in the list: read it on its own.
    if (!known.has(id)) {
      try {
        known.set(id, await getJson(`${prefix}/${encodeURIComponent(id)}`));
        render({ focusKey: 'back' });
      } catch (error) {
        onError?.(error);
      }
    }
  }

  async function load() {
    const mine = ++asked;
    try {
      const body = await getJson(`${prefix}?state=active&limit=${LIMIT}`);
      // The list's rows say nothing of their reports: each one's detail is read too.
      const details = await Promise.all(body.incidents.map((incident) => getJson(`${prefix}/${encodeURIComponent(incident.id)}`)));
      if (mine !== asked) return;
      const picked = selected && known.get(selected);
      known.clear();
      if (picked) known.set(picked.id, picked);
      for (const detail of details) known.set(detail.id, detail);
      order = details.map((detail) => detail.id);
      problemText = '';
    } catch (error) {
      if (mine !== asked) return;
      problemText = `Incidents not loaded: ${errorText(error)}`;
      onError?.(error);
    }
    draw();
    count();
    render();
  }

  const loadSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, DEBOUNCE_MS);
  };

  const highlight = (id) => {
    fresh.add(id);
    button.classList.add('fl-new');
    setTimeout(() => {
      fresh.delete(id);
      panel.body.querySelector(`[data-incident="${CSS.escape(id)}"]`)?.classList.remove('fl-new');
      if (!fresh.size) button.classList.remove('fl-new');
    }, HIGHLIGHT_MS);
  };

  return {
    load,
    open: () => { panel.show(); return load(); },
    close: () => panel.close(),
    select,
    button,
    overlay,
    showIsolation: (pipeId) => showIsolation(pipeId),
    /** A live `incident` event: a new one is highlighted; a task event may move one on. */
    onEvent(event) {
      if (event.type === 'incident') {
        if (event.action === 'open' && !known.has(event.id)) {
          highlight(event.id);
          announce.textContent = `New incident ${event.id}${event.title ? `: ${event.title}` : ''}`;
        }
        loadSoon();
      } else if (event.type === 'task' && [...known.values()].some((incident) => incident.tasks.some((task) => task.id === event.task_id))) {
        loadSoon();
      }
    },
    get active() { return [...order]; },
    get: (id) => known.get(id),
    get selected() { return selected; },
  };
}
