// The asset panel: an asset's attributes (GET /api/v1/assets/{layer}/{id}, not only what the
// tile carries), its recent edits (.../history) and a "Create task here" form that POSTs
// /api/v1/tasks with the asset; the API's errors are shown beside the field they name.

import { ApiError, getJson, postJson } from './api.js';
import { LABELS } from './layers.js';
import { el, facts, timeText } from './panel.js';
import { PRIORITIES } from './tasks.js';

const HISTORY_SHOWN = 10;
const SOURCES = [
  ['plan', 'Planned work'],
  ['call_centre', 'Customer call'],
  ['scada_alarm', 'SCADA alarm'],
];
const SINGULAR = {
  pipes: 'Pipe', valves: 'Valve', hydrants: 'Hydrant', meters: 'Meter', stations: 'Station',
};

function valueText(value) {
  if (value === null || value === undefined || value === '') return '';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) return timeText(value);
  return String(value);
}

const attributeName = (name) => name.replaceAll('_', ' ').replace(/^./, (c) => c.toUpperCase());

function attributes(feature) {
  return facts(Object.entries(feature.properties ?? {})
    .filter(([name]) => name !== 'id')
    .map(([name, value]) => [attributeName(name), valueText(value)]));
}

function history(edits) {
  if (!edits.length) return el('p', { className: 'fl-muted' }, 'No recorded edits');
  const list = el('ol', { className: 'fl-history', 'aria-label': 'Recent edits, newest first' });
  for (const edit of [...edits].reverse().slice(0, HISTORY_SHOWN)) {
    const change = edit.field ? `${edit.field}: ${valueText(edit.old) || '—'} → ${valueText(edit.new) || '—'}` : '';
    list.append(el('li', {},
      el('span', { className: 'fl-history-when' }, timeText(edit.at)), ' ',
      el('strong', {}, edit.action), change ? ` ${change}` : '',
      el('span', { className: 'fl-muted' }, ` · ${[edit.actor, edit.source].filter(Boolean).join(', ')}`)));
  }
  return list;
}

/** A labelled field with the element that shows its error (aria-describedby points at it). */
function field(form, name, label, control) {
  const id = `fl-task-${name.replace('.', '-')}`;
  control.id = id;
  control.name = name;
  const error = el('p', { className: 'fl-field-error', id: `${id}-error`, hidden: true, role: 'alert' });
  control.setAttribute('aria-describedby', error.id);
  form.fields.set(name, { control, error });
  return el('div', { className: 'fl-field' }, el('label', { for: id }, label), control, error);
}

const select = (options, chosen) => el('select', {},
  ...options.map(([value, label]) => el('option', { value, selected: value === chosen }, label)));

/** The form that makes a task at the asset. */
function taskForm(config, layer, assetId, { onCreated }) {
  const kinds = config.task_kinds?.[layer] ?? [];
  const form = el('form', { className: 'fl-form', noValidate: true, 'aria-label': 'Create task here' });
  form.fields = new Map();
  const kind = select(kinds.map(({ kind: value, title }) => [value, title]), kinds[0]?.kind);
  const priority = select(PRIORITIES.map(([value, label]) => [value, label]), 'P3');
  const source = select(SOURCES, 'plan');
  const title = el('input', { type: 'text', maxLength: 200, autocomplete: 'off' });
  const description = el('textarea', { rows: 3, maxLength: 5000 });
  const callerName = el('input', { type: 'text', autocomplete: 'off' });
  const callerPhone = el('input', { type: 'tel', autocomplete: 'off' });
  const kindTitle = () => kinds.find((k) => k.kind === kind.value)?.title ?? 'Task';
  let titleEdited = false;
  const prefill = () => { if (!titleEdited) title.value = `${kindTitle()} at ${assetId}`; };
  prefill();
  title.addEventListener('input', () => { titleEdited = title.value !== ''; });
  kind.addEventListener('change', prefill);
  const problem = el('p', { className: 'fl-field-error', hidden: true, role: 'alert' });
  const submit = el('button', { type: 'submit', className: 'fl-button fl-primary' }, 'Create task');
  // The API names `caller` as a whole (a customer call needs one): its error shows over both.
  const callerError = el('p', { className: 'fl-field-error', id: 'fl-task-caller-error', hidden: true, role: 'alert' });

  form.append(
    field(form, 'kind', 'Kind', kind),
    field(form, 'priority', 'Priority', priority),
    field(form, 'source', 'Source', source),
    field(form, 'title', 'Title', title),
    field(form, 'description', 'Description', description),
    el('fieldset', { className: 'fl-caller' },
      el('legend', {}, 'Caller (optional; needed for a customer call)'),
      field(form, 'caller.name', 'Name', callerName),
      field(form, 'caller.phone', 'Phone', callerPhone),
      callerError),
    problem,
    submit,
  );

  form.fields.set('caller', { control: callerName, error: callerError });
  const showError = (name, text) => {
    // The API names nested fields (`caller.phone`, `assets[0].id`): the nearest one we show.
    const known = form.fields.get(name) ?? form.fields.get(String(name).split(/[.[]/)[0]);
    const target = known?.error ?? problem;
    target.textContent = text;
    target.hidden = false;
    if (known) {
      known.control.setAttribute('aria-invalid', 'true');
      known.control.focus();
    }
  };
  const clearErrors = () => {
    for (const { control, error } of form.fields.values()) {
      error.hidden = true;
      error.textContent = '';
      control.removeAttribute('aria-invalid');
    }
    problem.hidden = true;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    if (!kinds.length) {
      showError('kind', `No task can be made at a ${layer} asset`);
      return;
    }
    const body = {
      kind: kind.value,
      priority: priority.value,
      source: source.value,
      title: title.value.trim() || undefined,
      description: description.value.trim() || undefined,
      assets: [{ layer, id: assetId }],
    };
    const caller = { name: callerName.value.trim(), phone: callerPhone.value.trim() };
    if (caller.name || caller.phone) {
      body.caller = Object.fromEntries(Object.entries(caller).filter(([, value]) => value));
    }
    submit.disabled = true;
    try {
      const task = await postJson(`${config.api_prefix}/tasks`, body);
      onCreated(task);
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && error.status) showError(error.field, error.message);
      else showError(undefined, `Not created: ${error.message}`);
    }
  });
  return form;
}

/**
 * @param {ReturnType<import('./panel.js').createPanel>} panel
 * @param {{api_prefix: string, task_kinds?: Object}} config
 * @param {{onCreated: (task: any) => void}} options
 */
export function createAssetPanel(panel, config, { onCreated }) {
  const base = `${config.api_prefix}/assets`;
  return {
    /** Opens the panel on an asset of a tile layer. */
    async show(layer, assetId) {
      const key = `asset:${layer}:${assetId}`;
      const heading = `${SINGULAR[layer] ?? LABELS[layer] ?? layer} ${assetId}`;
      const path = `${base}/${encodeURIComponent(layer)}/${encodeURIComponent(assetId)}`;
      panel.open(heading, el('p', { className: 'fl-muted', role: 'status' }, 'Loading…'), { key });
      const [feature, edits] = await Promise.allSettled([getJson(path), getJson(`${path}/history`)]);
      if (panel.showing !== key) return; // another asset or task was opened meanwhile
      const sections = [];
      sections.push(el('h3', {}, 'Attributes'));
      sections.push(feature.status === 'fulfilled'
        ? attributes(feature.value)
        : el('p', { className: 'fl-field-error', role: 'alert' }, `Attributes not loaded: ${feature.reason.message}`));
      sections.push(el('h3', {}, 'Recent history'));
      sections.push(edits.status === 'fulfilled'
        ? history(edits.value.edits ?? [])
        : el('p', { className: 'fl-muted' }, `History not available: ${edits.reason.message}`));
      sections.push(el('h3', {}, 'Create task here'));
      sections.push(taskForm(config, layer, assetId, { onCreated }));
      panel.open(heading, sections, { key });
    },
  };
}
