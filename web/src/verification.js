// The verification overlay: a task's check against the crew's trace
// (GET /api/v1/tasks/{id}/verification) drawn over the network — covered pipe parts green,
// missed ones red and thicker, checkpoints filled when visited and hollow when not, gaps
// dashed, jumps purple, dwell spots, the counted trace thin grey and the too-fast parts orange —
// with a summary box (result, reasons, coverage, the printable report, clear). The "Checks"
// panel lists recent runs (GET /api/v1/verifications), newest first, failed ones marked.

import { getJson } from './api.js';
import { createPanel, el, topbarButton } from './panel.js';

const COVERED = '#009E73';
const MISSED = '#D55E00';
const CHECKPOINT_OK = '#009E73';
const CHECKPOINT_SHORT = '#B3261E';
const GAP = '#3d4650';
const JUMP = '#7B3FA0';
const DWELL = '#0072B2';
const TRACE = '#7a7a7a';
const TOO_FAST = '#E69F00';
const LIST_LIMIT = 50;

const dashed = { 'line-dasharray': [2, 2] };
const round = { 'line-cap': 'round', 'line-join': 'round' };

/** The overlay's layers, bottom to top: [API layer, style layer]. */
const STYLE = [
  ['trace', { type: 'line', layout: round, paint: { 'line-color': TRACE, 'line-width': 1.5 } }],
  ['too_fast', { type: 'line', layout: round, paint: { 'line-color': TOO_FAST, 'line-width': 3 } }],
  ['covered', { type: 'line', layout: round, paint: { 'line-color': COVERED, 'line-width': 5 } }],
  ['missed', { type: 'line', layout: round, paint: { 'line-color': MISSED, 'line-width': 8 } }],
  ['gaps', { type: 'line', paint: { 'line-color': GAP, 'line-width': 2, ...dashed } }],
  ['jumps', { type: 'line', layout: round, paint: { 'line-color': JUMP, 'line-width': 3 } }],
  ['dwell', {
    type: 'circle',
    paint: {
      'circle-color': DWELL,
      'circle-opacity': 0.35,
      'circle-radius': ['match', ['get', 'kind'], 'site', 12, 8],
      'circle-stroke-color': DWELL,
      'circle-stroke-width': 1.5,
    },
  }],
  ['checkpoints', {
    type: 'circle',
    paint: {
      // Filled when visited, hollow when not; the ring is green when the stay was long enough.
      'circle-color': ['case', ['get', 'visited'], ['case', ['get', 'passed'], CHECKPOINT_OK, CHECKPOINT_SHORT], '#ffffff'],
      'circle-radius': 7,
      'circle-stroke-color': ['case', ['get', 'passed'], CHECKPOINT_OK, CHECKPOINT_SHORT],
      'circle-stroke-width': 3,
    },
  }],
];
export const VERIFICATION_LAYERS = STYLE.map(([name]) => `verification-${name}`);

const KEYS = [
  ['Covered pipe', COVERED, 'line'],
  ['Missed pipe', MISSED, 'line thick'],
  ['Checkpoint visited', CHECKPOINT_OK, 'dot'],
  ['Checkpoint missed', '#ffffff', 'dot', CHECKPOINT_SHORT],
  ['Gap in the trace', GAP, 'line dashed'],
  ['Jump', JUMP, 'line'],
  ['Stop, time on site', DWELL, 'dot'],
  ['Trace that counts', TRACE, 'line thin'],
  ['Too fast', TOO_FAST, 'line'],
];

const RESULT_TEXT = { pass: 'Passed', fail: 'Failed' };

function percent(ratio) {
  return `${Math.round(ratio * 1000) / 10} %`;
}

function when(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

/** West, south, east, north of every coordinate in the layers, or null. */
function extent(layers) {
  let box = null;
  const visit = (coordinates) => {
    if (typeof coordinates[0] === 'number') {
      const [x, y] = coordinates;
      box = box ? [Math.min(box[0], x), Math.min(box[1], y), Math.max(box[2], x), Math.max(box[3], y)] : [x, y, x, y];
    } else {
      for (const inner of coordinates) visit(inner);
    }
  };
  for (const collection of Object.values(layers)) {
    for (const feature of collection?.features ?? []) if (feature.geometry) visit(feature.geometry.coordinates);
  }
  return box;
}

function resultOf(run) {
  if (run.status === 'pending') return 'pending';
  if (run.status === 'error') return 'error';
  return run.effective_result ?? run.result ?? 'unknown';
}

function resultText(run) {
  const result = resultOf(run);
  if (result === 'pending') return 'Not checked yet';
  if (result === 'error') return 'The check could not run';
  const text = RESULT_TEXT[result] ?? result;
  return run.override ? `${text} (overridden by ${run.override.by})` : text;
}

/** Room around the overlay so that the summary box and an open legend beside it hide none of it. */
function clearOf(box, margin = 40) {
  const map = box.parentElement.getBoundingClientRect();
  const room = { top: margin, bottom: margin, left: margin, right: margin };
  const summary = box.getBoundingClientRect();
  if (summary.width < map.width / 2) room.left += summary.width;
  const legend = document.getElementById('legend');
  const side = legend?.open ? legend.getBoundingClientRect() : null;
  if (side && side.width < map.width / 2) room.right += side.width;
  // A narrow screen: both lie over the map; keep what is left at least a third of it.
  if (room.left + room.right > map.width * 0.66) Object.assign(room, { left: margin, right: margin });
  return room;
}

let current = null; // the page's overlay, for showVerification()

/**
 * Shows a task's latest verification on the page's map; resolves to the run shown.
 * The task panel calls this; the overlay must have been created (main.js does, on load).
 */
export function showVerification(taskId) {
  if (!current) return Promise.reject(new Error('the map is not loaded yet'));
  return current.show(taskId);
}

/**
 * @param {maplibregl.Map} map (loaded)
 * @param {{api_prefix: string}} config
 * @param {{onError?: (error: Error) => void, padding?: () => object}} [options]
 */
export function createVerificationOverlay(map, config, { onError, padding } = {}) {
  const box = el('section', 'fl-verification');
  box.id = 'verification-summary';
  box.hidden = true;
  box.setAttribute('aria-labelledby', 'verification-summary-title');
  box.setAttribute('aria-live', 'polite');
  (document.querySelector('.fl-main') ?? document.body).append(box);
  let shown = null; // the run drawn
  let asked = 0;

  // Above the network, under the live crews and tasks.
  const below = () => ['tasks-state', 'tasks', 'crews'].find((id) => map.getLayer(id));
  for (const [name, style] of STYLE) {
    map.addSource(`verification-${name}`, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    if (name === 'covered' || name === 'missed') {
      // A white casing sets the check's lines apart from the pipes' own colours.
      map.addLayer({
        id: `verification-${name}-casing`,
        source: `verification-${name}`,
        type: 'line',
        layout: round,
        paint: { 'line-color': '#ffffff', 'line-width': style.paint['line-width'] + 4 },
      }, below());
    }
    map.addLayer({ id: `verification-${name}`, source: `verification-${name}`, ...style }, below());
  }

  const setData = (layers) => {
    for (const [name] of STYLE) {
      map.getSource(`verification-${name}`)?.setData(layers?.[name] ?? { type: 'FeatureCollection', features: [] });
    }
  };

  const clear = () => {
    asked += 1;
    shown = null;
    setData(null);
    box.hidden = true;
    box.replaceChildren();
  };

  const summary = (run) => {
    const result = resultOf(run);
    box.dataset.result = result;
    box.dataset.task = run.task_id;
    const title = el('h2', 'fl-verification-title', `Check of ${run.task_id}`);
    title.id = 'verification-summary-title';
    const outcome = el('p', `fl-verification-result fl-result-${result}`, resultText(run));
    const facts = el('dl', 'fl-verification-facts');
    const fact = (term, value) => {
      if (value === null || value === undefined || value === '') return;
      facts.append(el('dt', '', term), el('dd', '', String(value)));
    };
    fact('Task', [run.task?.kind, run.task?.title].filter(Boolean).join(': '));
    fact('Run', `${run.run}, checked ${when(run.checked_at)}`);
    fact('Window', `${when(run.window.from)} – ${when(run.window.to)}`);
    const coverage = run.summary?.coverage;
    if (coverage) fact('Coverage', `${percent(coverage.ratio)} of ${Math.round(coverage.length_m)} m`);
    const checkpoints = run.summary?.checkpoints ?? [];
    if (checkpoints.length) {
      fact('Checkpoints', `${checkpoints.filter((row) => row.passed).length} of ${checkpoints.length} visited`);
    }
    const site = run.summary?.site;
    if (site) fact('On site', `${Math.round(site.dwell_s / 60)} min (${site.passed ? 'enough' : 'too short'})`);
    box.replaceChildren(title, outcome, facts);
    const reasons = [...run.reasons, run.error].filter(Boolean);
    if (reasons.length) {
      const list = el('ul', 'fl-verification-reasons');
      list.setAttribute('aria-label', 'Reasons');
      list.append(...reasons.map((reason) => el('li', '', reason)));
      box.append(list);
    }
    const keys = el('ul', 'fl-verification-keys');
    keys.setAttribute('aria-label', 'Key');
    for (const [label, colour, shape, ring] of KEYS) {
      const swatch = el('span', `fl-key fl-key-${shape.split(' ').join(' fl-key-')}`);
      swatch.style.setProperty('--colour', colour);
      if (ring) swatch.style.setProperty('--ring', ring);
      swatch.setAttribute('aria-hidden', 'true');
      const row = el('li');
      row.append(swatch, document.createTextNode(label));
      keys.append(row);
    }
    const legend = el('details', 'fl-verification-legend');
    legend.append(el('summary', '', 'Key'), keys);
    const actions = el('div', 'fl-verification-actions');
    const report = el('a', 'fl-button', 'Printable report');
    report.href = `${config.api_prefix}/tasks/${encodeURIComponent(run.task_id)}/verification/report?run=${run.run}`;
    report.target = '_blank';
    report.rel = 'noopener';
    const close = el('button', 'fl-button fl-verification-clear', 'Clear');
    close.type = 'button';
    close.setAttribute('aria-label', `Clear the check of ${run.task_id} from the map`);
    close.addEventListener('click', clear);
    actions.append(report, close);
    box.append(legend, actions);
    box.hidden = false;
  };

  const show = async (taskId) => {
    const mine = ++asked;
    try {
      const run = await getJson(`${config.api_prefix}/tasks/${encodeURIComponent(taskId)}/verification`);
      if (mine !== asked) return run; // another task was asked for meanwhile
      shown = run;
      setData(run.layers);
      summary(run);
      const bounds = extent(run.layers ?? {});
      if (bounds) {
        map.fitBounds([[bounds[0], bounds[1]], [bounds[2], bounds[3]]], {
          padding: padding?.() ?? clearOf(box), maxZoom: 18, duration: 600,
        });
      }
      return run;
    } catch (error) {
      onError?.(error);
      throw error;
    }
  };

  current = { show, clear };
  return {
    show,
    clear,
    /** The run drawn, or null. */
    get shown() { return shown && { task_id: shown.task_id, run: shown.run, result: resultOf(shown) }; },
    layers: VERIFICATION_LAYERS,
  };
}

/**
 * The "Checks" panel: recent verification runs, newest first, each with a button that shows
 * its check on the map.
 * @param {{api_prefix: string}} config
 * @param {{show: (taskId: string) => Promise<any>}} overlay
 */
export function createChecksPanel(config, overlay) {
  const panel = createPanel({ id: 'checks', title: 'Checks' });
  const filter = el('label', 'fl-inline');
  const failedOnly = document.createElement('input');
  failedOnly.type = 'checkbox';
  failedOnly.id = 'checks-failed-only';
  filter.append(failedOnly, document.createTextNode(' Failed only'));
  const refresh = el('button', 'fl-button', 'Refresh');
  refresh.type = 'button';
  const tools = el('div', 'fl-panel-tools');
  tools.append(filter, refresh);
  const problem = el('p', 'fl-problem');
  problem.setAttribute('role', 'alert');
  problem.hidden = true;
  const empty = el('p', 'fl-empty', 'No checks yet');
  empty.hidden = true;
  const list = el('ol', 'fl-check-list');
  list.setAttribute('aria-label', 'Checks, newest first');
  panel.body.append(tools, problem, empty, list);

  const row = (run) => {
    const result = resultOf(run);
    const item = el('li', `fl-check fl-result-${result}`);
    item.dataset.task = run.task_id;
    item.dataset.result = result;
    const button = el('button', 'fl-task-link', run.task_id);
    button.type = 'button';
    button.setAttribute('aria-label', `Show the check of ${run.task_id} on the map`);
    button.addEventListener('click', async () => {
      problem.hidden = true;
      try {
        await overlay.show(run.task_id);
      } catch (error) {
        problem.textContent = `Not shown: ${error.message}`;
        problem.hidden = false;
      }
    });
    const badge = el('span', 'fl-check-result', resultText(run));
    const head = el('div', 'fl-warning-head');
    head.append(button, badge);
    const detail = el('p', 'fl-warning-detail',
      [run.task?.kind, run.task?.title, when(run.checked_at ?? run.due_at)].filter(Boolean).join(' · '));
    item.append(head, detail);
    if (result === 'fail' && run.reasons.length) item.append(el('p', 'fl-check-reasons', run.reasons.join('; ')));
    return item;
  };

  const load = async () => {
    const query = new URLSearchParams({ limit: String(LIST_LIMIT) });
    if (failedOnly.checked) query.set('result', 'fail');
    try {
      const body = await getJson(`${config.api_prefix}/verifications?${query}`);
      list.replaceChildren(...body.verifications.map(row));
      empty.hidden = body.verifications.length > 0;
      problem.hidden = true;
    } catch (error) {
      problem.textContent = `Checks not loaded: ${error.message}`;
      problem.hidden = false;
    }
  };
  failedOnly.addEventListener('change', load);
  refresh.addEventListener('click', load);
  const button = topbarButton('Checks', panel, load);
  return {
    load,
    open: () => { panel.show(); return load(); },
    close: () => panel.close(),
    button,
    onEvent(event) {
      if (event.type === 'verification' && panel.isOpen) load();
    },
  };
}
