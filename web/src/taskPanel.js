// The task panel: a task's state, priority, promised times, crew and history
// (GET /api/v1/tasks/{id}); the crews that could go, quickest by road first
// (GET .../candidates), each with an Assign button, or Reassign when a crew has the task
// (POST .../assign, which transfers it then); Cancel with a reason, confirmed first
// (POST .../cancel). After an action the panel and the tasks layer are read again.

import { ApiError, getJson, postJson } from './api.js';
import { el, facts, timeText } from './panel.js';
import { showVerification } from './verification.js';

const STATE_LABELS = {
  created: 'Waiting for a crew',
  assigned: 'Offered to the crew',
  accepted: 'Accepted',
  en_route: 'En route',
  on_site: 'On site',
  completed: 'Completed',
  verified: 'Verified',
  cancelled: 'Cancelled',
};
const ACTIVE = ['assigned', 'accepted', 'en_route', 'on_site'];
const REFRESH_MS = 300;

const minutes = (seconds) => `${Math.max(1, Math.round(seconds / 60))} min`;
const distance = (metres) => (metres >= 1000 ? `${(metres / 1000).toFixed(1)} km` : `${Math.round(metres)} m`);

function historyList(steps) {
  if (!steps?.length) return el('p', { className: 'fl-muted' }, 'No transitions yet');
  const list = el('ol', { className: 'fl-history', 'aria-label': 'Transitions, newest first' });
  for (const step of [...steps].reverse()) {
    list.append(el('li', {},
      el('span', { className: 'fl-history-when' }, timeText(step.at)), ' ',
      el('strong', {}, step.action), ` ${step.from_state ?? '·'} → ${step.to_state}`,
      step.crew ? ` · ${step.crew}` : '',
      el('span', { className: 'fl-muted' }, ` · ${step.actor} (${step.actor_kind})`),
      step.note ? el('div', { className: 'fl-note-text' }, step.note) : null));
  }
  return list;
}

/**
 * @param {ReturnType<import('./panel.js').createPanel>} panel
 * @param {{api_prefix: string}} config
 * @param {{onChanged?: (task: any) => void}} [options] after an action (the tasks layer reloads)
 */
export function createTaskPanel(panel, config, { onChanged } = {}) {
  const base = `${config.api_prefix}/tasks`;
  let timer = 0;
  let shownId = null;

  const problemBox = () => el('p', { className: 'fl-field-error', role: 'alert', hidden: true });
  const showProblem = (box, text) => {
    box.textContent = text;
    box.hidden = !text;
  };

  /** Runs an action's request; the panel and the layer are read again on success. */
  const act = async (button, box, request) => {
    button.disabled = true;
    showProblem(box, '');
    try {
      const answer = await request();
      onChanged?.(answer?.task);
      await refresh();
      return true;
    } catch (error) {
      button.disabled = false;
      showProblem(box, error instanceof ApiError && error.status ? error.message : `No answer: ${error.message}`);
      return false;
    }
  };

  function candidatesSection(task) {
    const reassign = Boolean(task.crew) && ACTIVE.includes(task.state);
    const verb = reassign ? 'Reassign' : 'Assign';
    const section = el('section', { className: 'fl-candidates', 'aria-label': 'Candidate crews' },
      el('h3', {}, reassign ? 'Reassign to another crew' : 'Candidate crews'));
    const status = el('p', { className: 'fl-muted', role: 'status' }, 'Looking for crews…');
    const box = problemBox();
    section.append(status, box);
    getJson(`${base}/${encodeURIComponent(task.id)}/candidates`).then((found) => {
      const others = found.candidates.filter((candidate) => candidate.crew_id !== task.crew);
      status.textContent = others.length
        ? (found.ranking === 'road' ? 'Quickest by road first' : 'Some times are straight-line estimates')
        : 'No available crew with the skills this task needs';
      if (!others.length) return;
      const list = el('ol', { className: 'fl-candidate-list' });
      for (const candidate of others) {
        const button = el('button', {
          type: 'button',
          className: 'fl-button',
          'aria-label': `${verb} to ${candidate.name} (${candidate.crew_id})`,
          dataset: { crew: candidate.crew_id },
        }, verb);
        button.addEventListener('click', () => act(button, box,
          () => postJson(`${base}/${encodeURIComponent(task.id)}/assign`, { crew: candidate.crew_id })));
        list.append(el('li', { className: 'fl-candidate', dataset: { crew: candidate.crew_id } },
          el('div', {},
            el('strong', {}, candidate.name), ` ${candidate.crew_id}`,
            el('div', { className: 'fl-muted' },
              `ETA ${minutes(candidate.eta_s)} (${timeText(candidate.eta_at)}) · ${distance(candidate.distance_m)}`
              + `${candidate.by_road ? ' by road' : ' straight line'} · ${candidate.status}`)),
          button));
      }
      section.append(list);
    }).catch((error) => {
      status.textContent = '';
      showProblem(box, `Candidates not loaded: ${error.message}`);
    });
    return section;
  }

  function cancelSection(task) {
    const box = problemBox();
    const start = el('button', { type: 'button', className: 'fl-button fl-danger' }, 'Cancel task…');
    const reason = el('textarea', {
      id: 'fl-cancel-reason', rows: 2, required: true, 'aria-describedby': 'fl-cancel-error',
    });
    const reasonError = el('p', { className: 'fl-field-error', id: 'fl-cancel-error', role: 'alert', hidden: true });
    const confirm = el('button', { type: 'submit', className: 'fl-button fl-danger' }, 'Confirm cancel');
    const keep = el('button', { type: 'button', className: 'fl-button' }, 'Keep the task');
    const form = el('form', { className: 'fl-form fl-confirm', hidden: true, noValidate: true, 'aria-label': 'Cancel the task' },
      el('div', { className: 'fl-field' }, el('label', { for: reason.id }, 'Reason for cancelling (required)'), reason, reasonError),
      el('div', { className: 'fl-actions' }, confirm, keep));
    start.addEventListener('click', () => {
      form.hidden = false;
      start.hidden = true;
      reason.focus();
    });
    keep.addEventListener('click', () => {
      form.hidden = true;
      start.hidden = false;
      start.focus();
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const note = reason.value.trim();
      showProblem(reasonError, note ? '' : 'Say why the task is cancelled');
      reason.toggleAttribute('aria-invalid', !note);
      if (!note) {
        reason.focus();
        return;
      }
      act(confirm, box, () => postJson(`${base}/${encodeURIComponent(task.id)}/cancel`, { note }));
    });
    return el('section', { className: 'fl-cancel', 'aria-label': 'Cancel' }, start, form, box);
  }

  function checkSection(task) {
    const box = el('p', { className: 'fl-field-error', role: 'alert', hidden: true });
    const button = el('button', { type: 'button', className: 'fl-button' }, 'Show check on the map');
    button.addEventListener('click', () => {
      box.hidden = true;
      showVerification(task.id).catch((error) => {
        box.textContent = error instanceof ApiError && error.status === 404
          ? 'Not checked yet: the check runs shortly after completion.'
          : `Check not shown: ${error.message}`;
        box.hidden = false;
      });
    });
    return el('section', { className: 'fl-task-check', 'aria-label': 'Proof of work' }, button, box);
  }

  function render(task) {
    const sections = [
      el('p', { className: 'fl-task-summary' },
        el('span', { className: 'fl-pill', dataset: { priority: task.priority } }, task.priority), ' ',
        el('strong', {}, task.title ?? task.kind)),
      facts([
        ['State', STATE_LABELS[task.state] ?? task.state],
        ['Kind', task.kind],
        ['Crew', task.crew ?? 'none'],
        ['Assets', (task.assets ?? []).map((asset) => asset.id).join(', ')],
        ['Created', `${timeText(task.created_at)} by ${task.created_by}`],
        ['Offer expires', task.offer_expires_at && timeText(task.offer_expires_at)],
        ['Promised arrival', timeText(task.promised_arrival_at)],
        ['Promised completion', timeText(task.promised_completion_at)],
        ['Arrived', task.arrived_at && timeText(task.arrived_at)],
        ['Completed', task.completed_at && timeText(task.completed_at)],
        ['Description', task.description],
        ['Caller', task.caller && [task.caller.name, task.caller.phone, task.caller.email].filter(Boolean).join(', ')],
      ]),
    ];
    const allowed = task.allowed_actions ?? [];
    if (allowed.includes('assign') || (task.crew && allowed.includes('transfer'))) sections.push(candidatesSection(task));
    if (allowed.includes('cancel')) sections.push(cancelSection(task));
    // Completed work, and work a check sent back, has a verification run to draw.
    if (task.state === 'completed' || task.state === 'verified' || task.reopen_count > 0) {
      sections.push(checkSection(task));
    }
    sections.push(el('h3', {}, 'History'), historyList(task.history));
    return sections;
  }

  async function show(taskId) {
    shownId = taskId;
    const key = `task:${taskId}`;
    if (panel.showing !== key) {
      panel.open(`Task ${taskId}`, el('p', { className: 'fl-muted', role: 'status' }, 'Loading…'), { key });
    }
    try {
      const task = await getJson(`${base}/${encodeURIComponent(taskId)}`);
      if (panel.showing !== key) return;
      panel.element.dataset.task = task.id;
      panel.element.dataset.state = task.state;
      panel.open(`Task ${taskId}`, render(task), { key });
    } catch (error) {
      if (panel.showing !== key) return;
      panel.open(`Task ${taskId}`, el('p', { className: 'fl-field-error', role: 'alert' }, `Task not loaded: ${error.message}`), { key });
    }
  }

  /** Reads the shown task again, unless the panel was closed meanwhile (no reopening). */
  function refresh() {
    return shownId && panel.showing === `task:${shownId}` ? show(shownId) : Promise.resolve();
  }

  return {
    show,
    /** A live `task` event on the task shown reads it again (a crew accepted, say). */
    onEvent(event) {
      if (event.type !== 'task' || !shownId || panel.showing !== `task:${shownId}`) return;
      if (event.task_id && event.task_id !== shownId) return;
      clearTimeout(timer);
      timer = setTimeout(refresh, REFRESH_MS);
    },
  };
}
