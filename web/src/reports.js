// The crews' field reports: the "Reports" panel of the top bar (GET /api/v1/reports, pending
// first, newest first; "Pending" or "All"), each with its kind, crew, time, note, asset,
// corrected attributes and photos, and for a pending one Accept and Reject (a reason asked
// inline); the API's error shows beside the control, naming the field. The pending reports
// (and the one picked in the list) are drawn on the map, a symbol per kind. A live `report`
// event reads them again: a new one is highlighted for a few seconds (never a sound) and the
// top bar button counts the pending ones.

import { ApiError, getJson, postJson } from './api.js';
import { createPanel, el, facts, timeText, topbarButton } from './panel.js';
import './reports.css';

/** [kind, label, colour, shape] — the kinds a crew may report (server/reports/models.py). */
export const REPORT_KINDS = [
  ['leak', 'Leak', '#0072B2', 'drop'],
  ['damage', 'Damage', '#D55E00', 'triangle'],
  ['attribute_correction', 'Attribute correction', '#CC79A7', 'square'],
  ['other', 'Other', '#8c8c8c', 'pentagon'],
];
const KIND_LABEL = Object.fromEntries(REPORT_KINDS.map(([kind, label]) => [kind, label]));
const STATUS_TEXT = { pending: 'Pending', accepted: 'Accepted', rejected: 'Rejected' };
const OUTLINE = '#1a1a1a';
const ICON_PX = 18;
const PENDING_LIMIT = 1000;
const ALL_LIMIT = 200;
const HIGHLIGHT_MS = 4000;
const DEBOUNCE_MS = 300;
const EMPTY = { type: 'FeatureCollection', features: [] };

/** The outline of a kind's symbol on a canvas of `side` pixels. */
function tracePath(context, shape, side) {
  const m = side * 0.12; // room for the outline
  const s = side - 2 * m;
  context.beginPath();
  if (shape === 'drop') {
    const r = s * 0.34;
    const cx = side / 2;
    const cy = m + s - r;
    context.moveTo(cx, m);
    context.lineTo(cx + r * 0.95, cy - r * 0.3);
    context.arc(cx, cy, r, -0.3, Math.PI + 0.3);
    context.closePath();
  } else if (shape === 'triangle') {
    context.moveTo(side / 2, m);
    context.lineTo(m + s, m + s);
    context.lineTo(m, m + s);
    context.closePath();
  } else if (shape === 'square') {
    context.rect(m + s * 0.08, m + s * 0.08, s * 0.84, s * 0.84);
  } else {
    for (let i = 0; i < 5; i += 1) {
      const angle = -Math.PI / 2 + (i * 2 * Math.PI) / 5;
      const x = side / 2 + (s / 2) * Math.cos(angle);
      const y = side / 2 + (s / 2) * Math.sin(angle) + s * 0.05;
      if (i === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    }
    context.closePath();
  }
}

/** A kind's symbol as an image for the symbol layer (no glyphs or sprites to fetch). */
function symbolImage(shape, fill, ratio) {
  const side = Math.round(ICON_PX * ratio);
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext('2d');
  tracePath(context, shape, side);
  context.fillStyle = fill;
  context.fill();
  context.lineJoin = 'round';
  context.lineWidth = 3 * ratio; // a white halo sets the symbol apart from the network under it
  context.strokeStyle = '#ffffff';
  context.stroke();
  context.lineWidth = 1.3 * ratio;
  context.strokeStyle = OUTLINE;
  context.stroke();
  return context.getImageData(0, 0, side, side);
}

/** The legend's keys for the reports layer. */
export function reportLegend() {
  return {
    keys: REPORT_KINDS.map(([, label, colour, shape]) => ({ label, colour, shape: `report-${shape}`, ring: OUTLINE })),
    notes: ['Pending reports, and the one picked in the Reports panel'],
  };
}

/** Pending first, then the latest taken first. */
function byReview(a, b) {
  const pending = (feature) => (feature.properties.status === 'pending' ? 0 : 1);
  return pending(a) - pending(b) || Date.parse(b.properties.ts) - Date.parse(a.properties.ts)
    || b.id.localeCompare(a.id);
}

function valueText(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function errorText(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  return error.field ? `${error.field}: ${error.message}` : error.message;
}

/**
 * @param {maplibregl.Map} map (its style loaded)
 * @param {{api_prefix: string}} config
 * @param {{onError?: (error: Error) => void}} [options]
 */
export function createReports(map, config, { onError } = {}) {
  const prefix = `${config.api_prefix}/reports`;
  const panel = createPanel({ id: 'reports', title: 'Field reports' });
  const show = el('select', { id: 'reports-filter', className: 'fl-report-filter' },
    el('option', { value: 'pending' }, 'Pending'), el('option', { value: 'all' }, 'All, pending first'));
  const refresh = el('button', { type: 'button', className: 'fl-button' }, 'Refresh');
  const tools = el('div', 'fl-panel-tools',
    el('label', { className: 'fl-inline', for: 'reports-filter' }, 'Show', show), refresh);
  const problem = el('p', { className: 'fl-problem', role: 'alert', hidden: true });
  const announce = el('p', { className: 'fl-visually-hidden', 'aria-live': 'polite' });
  const empty = el('p', { className: 'fl-empty', hidden: true }, 'No reports to review');
  const list = el('ol', { className: 'fl-report-list', 'aria-label': 'Field reports, pending first, newest first' });
  panel.body.append(tools, problem, announce, empty, list);

  const badge = el('span', { className: 'fl-badge fl-report-count', 'aria-hidden': 'true', hidden: true });
  const button = topbarButton('Reports', panel, () => load());
  button.append(badge);

  const known = new Map(); // id -> feature, everything read last
  const rows = new Map(); // id -> {sig, element}
  const fresh = new Set(); // ids highlighted as new
  let pendingIds = [];
  let selected = null; // the id picked in the list: drawn even when reviewed
  let timer = 0;
  let asked = 0;

  // The layer: a symbol per kind over a white halo; reviewed ones (only the one picked) faint.
  const ratio = Math.max(1, Math.round(window.devicePixelRatio || 1));
  for (const [kind, , colour, shape] of REPORT_KINDS) {
    map.addImage(`report-${kind}`, symbolImage(shape, colour, ratio), { pixelRatio: ratio });
  }
  map.addSource('reports', { type: 'geojson', data: EMPTY });
  map.addLayer({
    id: 'reports',
    type: 'symbol',
    source: 'reports',
    layout: {
      'icon-image': ['coalesce', ['image', ['concat', 'report-', ['get', 'kind']]], ['image', 'report-other']],
      'icon-allow-overlap': true,
      'icon-ignore-placement': true,
      'symbol-sort-key': ['case', ['==', ['get', 'status'], 'pending'], 2, 1],
    },
    paint: { 'icon-opacity': ['case', ['==', ['get', 'status'], 'pending'], 1, 0.55] },
  });

  const draw = () => {
    const ids = new Set(pendingIds);
    if (selected) ids.add(selected);
    const features = [...ids].map((id) => known.get(id)).filter(Boolean).map((feature) => ({
      type: 'Feature',
      id: feature.id,
      geometry: feature.geometry,
      properties: { id: feature.id, kind: feature.properties.kind, status: feature.properties.status },
    }));
    map.getSource('reports')?.setData({ type: 'FeatureCollection', features });
  };

  const count = () => {
    const n = pendingIds.length;
    badge.textContent = n >= PENDING_LIMIT ? `${PENDING_LIMIT}+` : String(n);
    badge.dataset.count = String(n);
    badge.hidden = n === 0;
    button.setAttribute('aria-label', n ? `Reports, ${badge.textContent} pending` : 'Reports, none pending');
  };

  /** Room around the report flown to, so the open panel hides none of it. */
  const clearOfPanel = (margin = 40) => {
    const room = { top: margin, bottom: margin, left: margin, right: margin };
    if (!panel.isOpen) return room;
    const area = map.getContainer().getBoundingClientRect();
    const box = panel.element.getBoundingClientRect();
    if (box.width < area.width / 2) room.right += box.width; // beside the map
    else room.bottom += Math.min(box.height, area.height * 0.66); // a bottom sheet
    return room;
  };

  const locate = (feature) => {
    selected = feature.id;
    draw();
    map.flyTo({ center: feature.geometry.coordinates, zoom: Math.max(map.getZoom(), 17), padding: clearOfPanel() });
  };

  /** Accepts or rejects; resolves to null when done, else the error (shown in `error`). */
  const review = async (feature, action, body, control, error) => {
    control.disabled = true;
    error.hidden = true;
    let failed = null;
    try {
      await postJson(`${prefix}/${encodeURIComponent(feature.id)}/${action}`, body);
      announce.textContent = `${feature.id} ${action === 'accept' ? 'accepted' : 'rejected'}`;
    } catch (failure) {
      failed = failure;
      error.textContent = `Not ${action === 'accept' ? 'accepted' : 'rejected'}: ${errorText(failure)}`;
      error.hidden = false;
      control.disabled = false;
      // Refused as it stands: the report keeps its place and its controls. A conflict
      // (reviewed meanwhile by someone else) is read again like a success.
      if (!(failure instanceof ApiError) || failure.status !== 409) return failed;
    }
    const place = [...list.children].indexOf(rows.get(feature.id)?.element);
    await load();
    // Back where the keyboard was: the report itself when still listed, else its successor.
    const still = rows.get(feature.id)?.element;
    const at = still?.isConnected ? still : list.children[place];
    (at?.querySelector('.fl-report-show') ?? panel.heading).focus({ preventScroll: true });
    return failed;
  };

  const row = (feature) => {
    const p = feature.properties;
    const kind = KIND_LABEL[p.kind] ?? p.kind;
    const item = el('li', { className: `fl-report fl-report-${p.status}`, dataset: { report: feature.id, status: p.status, kind: p.kind } });
    if (fresh.has(feature.id)) item.classList.add('fl-new');
    const swatch = el('span', { className: `fl-swatch fl-swatch-report-${REPORT_KINDS.find(([k]) => k === p.kind)?.[3] ?? 'pentagon'}`, 'aria-hidden': 'true' });
    swatch.style.setProperty('--colour', REPORT_KINDS.find(([k]) => k === p.kind)?.[2] ?? '#8c8c8c');
    const showButton = el('button', {
      type: 'button', className: 'fl-task-link fl-report-show', 'aria-label': `Show ${kind.toLowerCase()} report ${feature.id} on the map`,
    }, `${kind} ${feature.id}`);
    showButton.addEventListener('click', () => locate(feature));
    const by = p.reviewed_by ? ` by ${p.reviewed_by}` : '';
    const status = el('span', 'fl-report-status', `${STATUS_TEXT[p.status] ?? p.status}${p.status === 'pending' ? '' : by}`);
    item.append(el('div', 'fl-warning-head', swatch, showButton, status));
    const detail = [p.crew_id, el('time', { dateTime: p.ts }, timeText(p.ts)), p.asset_id && `asset ${p.asset_id}`]
      .filter(Boolean).flatMap((part, i) => (i ? [' · ', part] : [part]));
    item.append(el('p', 'fl-warning-detail', ...detail));
    if (p.note) item.append(el('p', 'fl-report-note', p.note));
    const changes = Object.entries(p.changes ?? {});
    if (changes.length) {
      const list = facts(changes.map(([name, value]) => [name, valueText(value)]), 'fl-facts fl-report-changes');
      list.setAttribute('aria-label', `Corrected attributes of ${p.asset_id ?? 'the asset'}`);
      item.append(list);
    }
    const photos = p.photos.filter((photo) => photo.url);
    if (photos.length) {
      item.append(el('ul', { className: 'fl-report-photos', 'aria-label': `Photos of ${feature.id}` },
        ...photos.map((photo, i) => el('li', {},
          el('a', { href: photo.url, target: '_blank', rel: 'noopener', title: 'Opens the full photo in a new tab' },
            el('img', { src: photo.url, alt: `Photo ${i + 1} of ${feature.id}`, loading: 'lazy', width: 72, height: 72 }))))));
    }
    if (p.missing_photos?.length) {
      const n = p.missing_photos.length;
      item.append(el('p', 'fl-muted', `${n} photo${n === 1 ? '' : 's'} not uploaded yet`));
    }
    if (p.status === 'rejected' && p.reason) item.append(el('p', 'fl-report-reason', `Reason: ${p.reason}`));
    if (p.status === 'accepted' && p.applied_fields?.length) {
      item.append(el('p', 'fl-muted', `Applied to ${p.asset_id}: ${p.applied_fields.join(', ')}`));
    }
    if (p.status === 'pending') item.append(...reviewControls(feature, kind));
    return item;
  };

  const reviewControls = (feature, kind) => {
    const error = el('p', { className: 'fl-field-error', role: 'alert', hidden: true });
    const accept = el('button', { type: 'button', className: 'fl-button fl-primary', 'aria-label': `Accept ${kind.toLowerCase()} report ${feature.id}` }, 'Accept');
    const reject = el('button', { type: 'button', className: 'fl-button fl-danger', 'aria-label': `Reject ${kind.toLowerCase()} report ${feature.id}`, 'aria-expanded': 'false' }, 'Reject');
    const reasonId = `report-reason-${feature.id}`;
    // Required, but the server says so (naming the field), not the browser's own bubble.
    const reason = el('input', { type: 'text', id: reasonId, 'aria-required': 'true', maxLength: 2000, autocomplete: 'off' });
    const send = el('button', { type: 'submit', className: 'fl-button fl-danger' }, 'Reject report');
    const cancel = el('button', { type: 'button', className: 'fl-button' }, 'Cancel');
    const reasonError = el('p', { className: 'fl-field-error', id: `${reasonId}-error`, role: 'alert', hidden: true });
    const form = el('form', { className: 'fl-form fl-report-reject', hidden: true, 'aria-label': `Reject ${feature.id}` },
      el('div', 'fl-field', el('label', { for: reasonId }, 'Reason'), reason, reasonError),
      el('div', 'fl-actions', send, cancel));
    reject.setAttribute('aria-controls', `${reasonId}-form`);
    form.id = `${reasonId}-form`;
    const closeForm = () => {
      form.hidden = true;
      reject.setAttribute('aria-expanded', 'false');
      reject.focus();
    };
    accept.addEventListener('click', () => review(feature, 'accept', undefined, accept, error));
    reject.addEventListener('click', () => {
      form.hidden = !form.hidden;
      reject.setAttribute('aria-expanded', String(!form.hidden));
      if (!form.hidden) reason.focus();
    });
    cancel.addEventListener('click', closeForm);
    form.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      event.preventDefault();
      event.stopPropagation(); // the form closes, not the panel
      closeForm();
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      reason.removeAttribute('aria-invalid');
      reasonError.hidden = true;
      const failed = await review(feature, 'reject', { reason: reason.value }, send, reasonError);
      if (failed?.field === 'reason') {
        reason.setAttribute('aria-invalid', 'true');
        reason.setAttribute('aria-describedby', reasonError.id);
        reason.focus();
      }
    });
    return [el('div', 'fl-actions fl-report-actions', accept, reject), error, form];
  };

  /** Shows the reports in order, reusing the rows that did not change (focus and a reason
   * being typed survive a live refresh). */
  const render = (features) => {
    const elements = features.map((feature) => {
      const sig = JSON.stringify([feature.properties, feature.geometry.coordinates]);
      const kept = rows.get(feature.id);
      if (kept && kept.sig === sig) return kept.element;
      const element = row(feature);
      rows.set(feature.id, { sig, element });
      return element;
    });
    const shown = new Set(features.map((feature) => feature.id));
    for (const id of [...rows.keys()]) if (!shown.has(id)) rows.delete(id);
    let at = list.firstChild;
    for (const element of elements) {
      if (element === at) at = at.nextSibling;
      else list.insertBefore(element, at);
    }
    while (at) {
      const next = at.nextSibling;
      at.remove();
      at = next;
    }
    empty.textContent = show.value === 'pending' ? 'No reports to review' : 'No reports yet';
    empty.hidden = features.length > 0;
  };

  async function load() {
    const mine = ++asked;
    try {
      const wanted = [getJson(`${prefix}?status=pending&limit=${PENDING_LIMIT}`)];
      const all = panel.isOpen && show.value === 'all';
      if (all) wanted.push(getJson(`${prefix}?limit=${ALL_LIMIT}`));
      const [pending, recent] = await Promise.all(wanted);
      if (mine !== asked) return; // a newer read is under way
      known.clear();
      for (const feature of [...(recent?.features ?? []), ...pending.features]) known.set(feature.id, feature);
      if (selected && !known.has(selected)) selected = null;
      pendingIds = pending.features.map((feature) => feature.id);
      draw();
      count();
      if (panel.isOpen) render([...(all ? known.values() : pending.features)].sort(byReview));
      problem.hidden = true;
    } catch (error) {
      if (mine !== asked) return;
      problem.textContent = `Reports not loaded: ${errorText(error)}`;
      problem.hidden = false;
      onError?.(error);
    }
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
      rows.get(id)?.element.classList.remove('fl-new');
      if (!fresh.size) button.classList.remove('fl-new');
    }, HIGHLIGHT_MS);
  };

  show.addEventListener('change', load);
  refresh.addEventListener('click', load);

  return {
    load,
    open: () => { panel.show(); return load(); },
    close: () => panel.close(),
    button,
    /** A live `report` event: a new pending one is highlighted; either way, read again. */
    onEvent(event) {
      if (event.type !== 'report') return;
      if (event.status === 'pending' && !known.has(event.id)) {
        highlight(event.id);
        announce.textContent = `New ${(KIND_LABEL[event.kind] ?? event.kind).toLowerCase()} report ${event.id} from ${event.crew_id}`;
      }
      loadSoon();
    },
    /** The report as read last ({id, kind, status, lon, lat}), or undefined. */
    get: (id) => {
      const feature = known.get(id);
      if (!feature) return undefined;
      const [lon, lat] = feature.geometry.coordinates;
      return { id, kind: feature.properties.kind, status: feature.properties.status, lon, lat };
    },
    get pending() { return [...pendingIds]; },
    get selected() { return selected; },
  };
}
