// The task list: one card per task, its details, a note, and one button per status the crew
// may report next.

import { STATUS_LABELS, canReport } from './tasks.js';

const STATE_LABELS = {
  assigned: 'new',
  accepted: 'accepted',
  en_route: 'on the way',
  on_site: 'on site',
  completed: 'completed',
};

// Notes being typed, by task: the list is drawn again whenever a task changes (a message, a
// fix's progress), and what the crew was typing must survive that.
const drafts = new Map();

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'className') node.className = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' }) : null;
}

/** What /progress says in words: pipes and checkpoints left, or whether the site was reached. */
export function progressText(progress) {
  if (!progress) return null;
  const parts = [];
  if (progress.pipes_total) {
    const share = Math.round((progress.covered_share ?? 0) * 100);
    parts.push(`${progress.pipes_remaining} of ${progress.pipes_total} pipes to cover (${share}% covered)`);
  }
  if (progress.checkpoints_total) {
    parts.push(`${progress.checkpoints_visited} of ${progress.checkpoints_total} checkpoints visited`);
  }
  if (progress.reached === true) parts.push('Site reached');
  if (progress.reached === false) parts.push('Site not reached yet');
  return parts.length ? parts.join(' · ') : null;
}

function duration(seconds) {
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** A /route answer in words: "12 min, 4.3 km by road · ETA 10:42". */
export function routeText(feature) {
  const p = feature?.properties;
  if (!p || !Number.isFinite(p.seconds) || !Number.isFinite(p.metres)) return null;
  const distance = p.metres < 1000 ? `${Math.round(p.metres)} m` : `${(p.metres / 1000).toFixed(1)} km`;
  const how = p.on_roads === false ? 'straight-line estimate' : 'by road';
  const eta = p.eta ? ` · ETA ${new Date(p.eta).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : '';
  return `${duration(p.seconds)}, ${distance} ${how}${eta}`;
}

function card(task, selected, onStatus, onSelect, route) {
  const note = el('input', { className: 'cr-note', name: 'note', placeholder: 'Note (optional)', 'aria-label': `Note for ${task.id}` });
  note.value = drafts.get(task.id) ?? '';
  note.addEventListener('input', () => drafts.set(task.id, note.value));
  const buttons = Object.entries(STATUS_LABELS).map(([status, label]) => {
    const button = el('button', { type: 'button', 'data-status': status, disabled: !canReport(task, status) }, label);
    button.addEventListener('click', () => {
      onStatus(task, status, note.value.trim() || null);
      drafts.delete(task.id);
      note.value = '';
    });
    return button;
  });
  const head = el(
    'button',
    { type: 'button', className: 'cr-task-head', 'aria-expanded': String(selected) },
    el('span', { className: 'cr-prio', 'data-priority': task.priority }, task.priority ?? ''),
    el('strong', {}, task.title || task.kind),
    el('span', { className: 'cr-state' }, STATE_LABELS[task.state] ?? task.state),
  );
  head.addEventListener('click', () => onSelect(task.id));
  const details = [
    el('p', { className: 'cr-meta' }, `${task.id} · ${task.kind}`),
    task.description ? el('p', {}, task.description) : null,
    task.caller?.name || task.caller?.phone
      ? el('p', {}, 'Caller: ', task.caller.name ?? '', ' ', task.caller.phone ? el('a', { href: `tel:${task.caller.phone}` }, task.caller.phone) : '')
      : null,
    task.promised_arrival_at ? el('p', {}, `Arrive by ${when(task.promised_arrival_at)}`) : null,
    selected && route?.task_id === task.id && routeText(route.feature) ? el('p', { className: 'cr-route' }, routeText(route.feature)) : null,
    task.assets?.length ? el('p', {}, `Assets: ${task.assets.map((a) => a.id).join(', ')}`) : null,
    progressText(task.progress) ? el('p', { className: 'cr-progress' }, progressText(task.progress)) : null,
    ...(task.notes ?? []).map((n) => el('p', { className: 'cr-task-note' }, `${when(n.at)}: ${n.note}`)),
  ];
  return el(
    'li',
    { className: 'cr-task', 'data-task': task.id, 'data-state': task.state, 'data-selected': String(selected) },
    head,
    ...details,
    note,
    el('div', { className: 'cr-actions' }, ...buttons),
  );
}

export function renderTasks(book, { list, empty, count, onStatus, onSelect, route }) {
  const tasks = book.list();
  const active = document.activeElement;
  const typing = active?.classList.contains('cr-note') ? active.closest('.cr-task')?.dataset.task : null;
  const caret = typing ? [active.selectionStart, active.selectionEnd] : null;
  list.replaceChildren(...tasks.map((task) => card(task, task.id === book.selected, onStatus, onSelect, route)));
  if (typing) {
    const note = list.querySelector(`.cr-task[data-task="${CSS.escape(typing)}"] .cr-note`);
    note?.focus();
    note?.setSelectionRange(...caret);
  }
  empty.hidden = tasks.length > 0;
  count.textContent = String(book.open().length);
}
