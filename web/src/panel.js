// A side panel over the map's right side (a bottom sheet on narrow screens) that shows one
// thing at a time: an asset, a task. A labelled region with a heading and a close button;
// Escape closes it; focus moves into it on opening and back where it was on closing.
// Any panel of the page can use it: `open(title, content)` fills it, `close()` empties it.

import './panel.css';

/** Builds an element: `el('p', {className: 'x'}, 'text', child)`. */
export function el(tag, properties = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(properties)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key.startsWith('aria-') || key === 'role' || key === 'for') element.setAttribute(key, value);
    else element[key] = value;
  }
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
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

/**
 * @param {HTMLElement} host where the panel goes (the page's main area, over the map)
 * @param {{onClose?: () => void}} [options]
 */
export function createSidePanel(host, { onClose } = {}) {
  counter += 1;
  const titleId = `fl-side-title-${counter}`;
  const title = el('h2', { className: 'fl-side-title', id: titleId, tabIndex: -1 });
  const closeButton = el('button', { type: 'button', className: 'fl-side-close', 'aria-label': 'Close the panel' }, '×');
  const body = el('div', { className: 'fl-side-body' });
  const panel = el(
    'section',
    { className: 'fl-side', hidden: true, 'aria-labelledby': titleId, role: 'region' },
    el('header', { className: 'fl-side-head' }, title, closeButton),
    body,
  );
  host.append(panel);
  let returnTo = null;
  let owner = null;

  const close = () => {
    if (panel.hidden) return;
    panel.hidden = true;
    body.replaceChildren();
    owner = null;
    const back = returnTo && returnTo.isConnected && returnTo !== document.body ? returnTo : null;
    returnTo = null;
    back?.focus({ preventScroll: true });
    onClose?.();
  };

  closeButton.addEventListener('click', close);
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
    }
  });
  // Escape also closes it when the focus is nowhere in particular (content replaced under
  // it by a refresh, or back on the map), not when another control has it.
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || event.defaultPrevented || panel.hidden) return;
    const active = document.activeElement;
    if (active && active !== document.body && active.tagName !== 'CANVAS') return;
    event.preventDefault();
    close();
  });

  return {
    element: panel,
    body,
    /**
     * Shows `content` under `heading`; `key` names what is shown (`task:T-000001`), so that
     * a refresh keeps the focus where it is. `focus`: where focus goes (else the heading).
     */
    open(heading, content, { key = heading, focus = null } = {}) {
      const refresh = !panel.hidden && owner === key;
      if (panel.hidden) {
        const active = document.activeElement;
        returnTo = active && !panel.contains(active) ? active : null;
      }
      owner = key;
      title.textContent = heading;
      body.replaceChildren(...[content].flat());
      panel.hidden = false;
      if (!refresh || !panel.contains(document.activeElement)) (focus ?? title).focus({ preventScroll: true });
    },
    close,
    /** What is shown (the `key` given to open), or null when closed. */
    get showing() { return panel.hidden ? null : owner; },
  };
}
