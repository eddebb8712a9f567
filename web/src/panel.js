// The page's panels over the map's right side (a bottom sheet on narrow screens): the asset
// and task panel, and the checks, crews, crew and KPI panels the top bar opens. One shows at
// a time, so they never cover each other: opening one closes the one open. Each is a labelled
// region with a heading and a close button; Escape closes it; focus moves to its heading on
// opening and back to what had it on closing.

import './panel.css';
import './panel-content.css';

/**
 * Builds an element: `el('p', {className: 'x'}, 'text', child)`, or with the class alone
 * as the second argument: `el('p', 'x', 'text')`.
 */
export function el(tag, properties = {}, ...children) {
  const element = document.createElement(tag);
  const given = typeof properties === 'string' ? { className: properties || undefined } : properties;
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key.startsWith('aria-') || key === 'role' || key === 'for') element.setAttribute(key, value);
    else element[key] = value;
  }
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false && child !== ''));
  return element;
}

/** A time as the dispatcher reads it: today's as hh:mm, others with the date. */
export function timeText(iso) {
  if (!iso) return '—';
  const when = new Date(iso);
  const today = new Date().toDateString() === when.toDateString();
  return today
    ? when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : when.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/** A definition list of [term, value] rows, the empty values left out. */
export function facts(rows, className = 'fl-facts') {
  const list = el('dl', { className });
  for (const [term, value] of rows) {
    if (value === undefined || value === null || value === '') continue;
    list.append(el('dt', {}, term), el('dd', {}, String(value)));
  }
  return list;
}

let counter = 0;
let current = null; // the panel shown

// Escape closes the open panel also when the focus is nowhere in particular (content
// replaced under it by a refresh, or back on the map), not when another control has it.
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || event.defaultPrevented || !current) return;
  const active = document.activeElement;
  if (active && active !== document.body && active.tagName !== 'CANVAS') return;
  event.preventDefault();
  current.close();
});

/**
 * @param {{id?: string, title?: string, host?: HTMLElement, onClose?: () => void}} [options]
 *   `host`: where the panel goes (the page's main area, over the map, by default)
 */
export function createPanel({ id, title = '', host, onClose } = {}) {
  counter += 1;
  const titleId = `${id ?? `fl-panel-${counter}`}-title`;
  const heading = el('h2', { className: 'fl-side-title', id: titleId, tabIndex: -1 }, title);
  const closeButton = el('button', { type: 'button', className: 'fl-side-close', 'aria-label': 'Close the panel' }, '×');
  const body = el('div', { className: 'fl-side-body' });
  const element = el(
    'section',
    { id, className: 'fl-side', hidden: true, 'aria-labelledby': titleId, role: 'region' },
    el('header', { className: 'fl-side-head' }, heading, closeButton),
    body,
  );
  (host ?? document.querySelector('.fl-main') ?? document.body).append(element);
  let returnTo = null;
  let owner = null;

  const panel = {
    element,
    body,
    heading,
    get isOpen() { return !element.hidden; },
    /** What is shown (the `key` given to open), or null when closed. */
    get showing() { return element.hidden ? null : owner; },
    /** Shows the panel with what its body holds, `focus` (else the heading) focused. */
    show({ focus = null } = {}) {
      if (element.hidden) {
        if (current && current !== panel) current.close({ refocus: false });
        const active = document.activeElement;
        returnTo = active instanceof HTMLElement && !element.contains(active) ? active : null;
        element.hidden = false;
        current = panel;
      }
      (focus ?? heading).focus({ preventScroll: true });
    },
    /**
     * Shows `content` under `text`; `key` names what is shown (`task:T-000001`), so that a
     * refresh of it keeps the focus where it is. `focus`: where focus goes (else the heading).
     */
    open(text, content, { key = text, focus = null } = {}) {
      const refresh = !element.hidden && owner === key;
      owner = key;
      heading.textContent = text;
      body.replaceChildren(...[content].flat());
      if (!refresh) panel.show({ focus });
      else if (!element.contains(document.activeElement)) (focus ?? heading).focus({ preventScroll: true });
    },
    close({ refocus = true } = {}) {
      if (element.hidden) return;
      element.hidden = true;
      owner = null;
      if (current === panel) current = null;
      const back = refocus && returnTo?.isConnected && returnTo !== document.body ? returnTo : null;
      returnTo = null;
      back?.focus({ preventScroll: true });
      onClose?.();
    },
  };
  closeButton.addEventListener('click', () => panel.close());
  element.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    panel.close();
  });
  return panel;
}

/** A button in the top bar that opens and closes a panel. */
export function topbarButton(label, panel, onOpen) {
  const button = el('button', { type: 'button', className: 'fl-topbar-button', 'aria-controls': panel.element.id }, label);
  button.setAttribute('aria-expanded', 'false');
  const sync = () => button.setAttribute('aria-expanded', String(panel.isOpen));
  new MutationObserver(sync).observe(panel.element, { attributes: true, attributeFilter: ['hidden'] });
  button.addEventListener('click', () => {
    if (panel.isOpen) {
      panel.close();
    } else {
      panel.show();
      onOpen?.();
    }
  });
  let bar = document.querySelector('.fl-topbar-tools');
  if (!bar) {
    bar = el('nav', { className: 'fl-topbar-tools', 'aria-label': 'Panels' });
    document.querySelector('.fl-topbar')?.append(bar);
  }
  bar.append(button);
  return button;
}
