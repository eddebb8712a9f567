// The KPI panel: today's and the last seven days' completion rate, on-time arrival and
// completion rates and median response, from GET /api/v1/kpis (one row over [from, to)),
// read again every few minutes while the panel is open.

import { getJson } from './api.js';
import { createPanel, el, topbarButton } from './panel.js';

const REFRESH_MS = 3 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const FIGURES = [
  ['completion_rate', 'Completed', 'completed_count', 'task_count'],
  ['on_time_arrival_rate', 'Arrived on time', 'on_time_arrivals', 'arrivals_measured'],
  ['on_time_completion_rate', 'Completed on time', 'on_time_completions', 'completions_measured'],
];

function rate(value) {
  return value === null || value === undefined ? '–' : `${Math.round(value * 100)} %`;
}

function minutes(value) {
  if (value === null || value === undefined) return '–';
  return value < 90 ? `${Math.round(value)} min` : `${(value / 60).toFixed(1)} h`;
}

/** The periods shown: since local midnight, and the seven days up to now. */
function periods(now = new Date()) {
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  return [
    ['today', 'Today', midnight, now],
    ['week', 'Last 7 days', new Date(now.getTime() - 7 * DAY_MS), now],
  ];
}

/** @param {{api_prefix: string}} config */
export function createKpiPanel(config) {
  const panel = createPanel({ id: 'kpis', title: 'KPIs', onClose: () => clearInterval(timer) });
  const table = el('table', 'fl-kpi-table');
  const caption = el('caption', 'fl-visually-hidden', 'Key figures of tasks created in each period');
  const head = el('thead');
  const headRow = el('tr');
  const body = el('tbody');
  table.append(caption, head, body);
  head.append(headRow);
  const updated = el('p', 'fl-note');
  const problem = el('p', 'fl-problem');
  problem.setAttribute('role', 'alert');
  problem.hidden = true;
  panel.body.append(table, updated, problem);
  let timer = 0;

  const render = (found) => {
    headRow.replaceChildren(el('th', '', ''), ...found.map(([, label]) => {
      const cell = el('th', '', label);
      cell.scope = 'col';
      return cell;
    }));
    const line = (label, cells) => {
      const row = el('tr');
      const name = el('th', '', label);
      name.scope = 'row';
      row.append(name, ...cells);
      return row;
    };
    const rows = FIGURES.map(([key, label, numerator, denominator]) => line(label, found.map(([name, , kpi]) => {
      const cell = el('td', '', rate(kpi?.[key]));
      cell.dataset.kpi = `${name}:${key}`;
      if (kpi && kpi[denominator]) cell.title = `${kpi[numerator]} of ${kpi[denominator]}`;
      return cell;
    })));
    rows.push(line('Median response', found.map(([name, , kpi]) => {
      const cell = el('td', '', minutes(kpi?.median_response_min));
      cell.dataset.kpi = `${name}:median_response_min`;
      return cell;
    })));
    rows.push(line('Tasks', found.map(([name, , kpi]) => {
      const cell = el('td', '', String(kpi?.task_count ?? 0));
      cell.dataset.kpi = `${name}:task_count`;
      return cell;
    })));
    body.replaceChildren(...rows);
  };

  const load = async () => {
    try {
      const found = await Promise.all(periods().map(async ([name, label, start, end]) => {
        const query = new URLSearchParams({ from: start.toISOString(), to: end.toISOString() });
        const answer = await getJson(`${config.api_prefix}/kpis?${query}`);
        return [name, label, answer.rows[0] ?? null];
      }));
      render(found);
      updated.textContent = `Tasks created in each period; updated ${new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
      problem.hidden = true;
    } catch (error) {
      problem.textContent = `KPIs not loaded: ${error.message}`;
      problem.hidden = false;
    }
  };

  topbarButton('KPIs', panel, () => {
    load();
    clearInterval(timer);
    timer = setInterval(load, REFRESH_MS);
  });
  return { load, open: () => { panel.show(); return load(); }, close: () => panel.close() };
}
