// A side drawer over the map's right side for the checks, crew and KPI panels: a labelled
// region with a heading and a close button. One drawer shows at a time; Escape closes the
// open one and gives the focus back to what opened it.

import './drawer.css';

const open = new Set();

document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || !open.size) return;
  const last = [...open].pop();
  last.close();
});

/**
 * @param {string} id the element's id
 * @param {string} title the heading, also the region's name
 * @param {{onClose?: () => void}} [options]
 */
export function createDrawer(id, title, { onClose } = {}) {
  const element = document.createElement('section');
  element.id = id;
  element.className = 'fl-drawer';
  element.hidden = true;
  element.tabIndex = -1;
  const headingId = `${id}-title`;
  element.setAttribute('aria-labelledby', headingId);

  const head = document.createElement('div');
  head.className = 'fl-drawer-head';
  const heading = document.createElement('h2');
  heading.id = headingId;
  heading.textContent = title;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'fl-drawer-close';
  close.textContent = '×';
  close.setAttribute('aria-label', `Close ${title}`);
  head.append(heading, close);
  const body = document.createElement('div');
  body.className = 'fl-drawer-body';
  element.append(head, body);
  (document.querySelector('.fl-main') ?? document.body).append(element);

  let opener = null;
  const drawer = {
    element,
    body,
    heading,
    get isOpen() { return !element.hidden; },
    show() {
      for (const other of [...open]) if (other !== drawer) other.close({ refocus: false });
      opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      element.hidden = false;
      open.delete(drawer);
      open.add(drawer);
      element.focus({ preventScroll: true });
    },
    close({ refocus = true } = {}) {
      if (element.hidden) return;
      element.hidden = true;
      open.delete(drawer);
      onClose?.();
      if (refocus && opener?.isConnected) opener.focus();
    },
  };
  close.addEventListener('click', () => drawer.close());
  return drawer;
}

/** A button in the top bar that opens and closes a drawer. */
export function topbarButton(label, drawer, onOpen) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'fl-topbar-button';
  button.textContent = label;
  button.setAttribute('aria-controls', drawer.element.id);
  button.setAttribute('aria-expanded', 'false');
  const sync = () => button.setAttribute('aria-expanded', String(drawer.isOpen));
  new MutationObserver(sync).observe(drawer.element, { attributes: true, attributeFilter: ['hidden'] });
  button.addEventListener('click', () => {
    if (drawer.isOpen) {
      drawer.close();
    } else {
      drawer.show();
      onOpen?.();
    }
  });
  let bar = document.querySelector('.fl-topbar-tools');
  if (!bar) {
    bar = document.createElement('nav');
    bar.className = 'fl-topbar-tools';
    bar.setAttribute('aria-label', 'Panels');
    document.querySelector('.fl-topbar')?.append(bar);
  }
  bar.append(button);
  return button;
}

/** A small element with a class and text. */
export function el(tag, className = '', text = '') {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text) element.textContent = text;
  return element;
}
