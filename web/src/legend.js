// The legend panel: one labelled checkbox per layer (top of the map first) with its keys.
// Plain checkboxes and a <details> element: reachable and operable from the keyboard, and
// read out properly by screen readers, with no script needed for either.

import { LABELS, legendFor, styleLayerIds } from './layers.js';

/** Shows or hides every style layer that draws a tile layer. */
export function setLayerVisible(map, name, visible) {
  for (const id of styleLayerIds(name)) {
    if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', visible ? 'visible' : 'none');
  }
}

function swatch(key) {
  const element = document.createElement('span');
  element.className = `fl-swatch fl-swatch-${key.shape}`;
  element.style.setProperty('--colour', key.colour);
  if (key.ring) element.style.setProperty('--ring', key.ring);
  element.setAttribute('aria-hidden', 'true');
  return element;
}

function entry(map, layer) {
  const item = document.createElement('li');
  item.className = 'fl-layer';
  item.dataset.layer = layer.name;

  const id = `fl-toggle-${layer.name}`;
  const input = document.createElement('input');
  input.type = 'checkbox';
  input.id = id;
  input.checked = true;
  input.addEventListener('change', () => setLayerVisible(map, layer.name, input.checked));
  const label = document.createElement('label');
  label.htmlFor = id;
  label.title = layer.title;
  label.textContent = LABELS[layer.name] ?? layer.title;
  const head = document.createElement('div');
  head.className = 'fl-layer-head';
  head.append(input, label);

  // Shown while the map is zoomed out beyond the layer's least zoom.
  const hint = document.createElement('span');
  hint.className = 'fl-hint';
  hint.textContent = `from zoom ${layer.min_zoom}`;
  head.append(hint);
  item.append(head);

  const { keys, notes } = legendFor(layer);
  if (keys.length) {
    const list = document.createElement('ul');
    list.className = 'fl-keys';
    for (const key of keys) {
      const row = document.createElement('li');
      row.append(swatch(key), document.createTextNode(key.label));
      list.append(row);
    }
    item.append(list);
  }
  for (const note of notes) {
    const text = document.createElement('p');
    text.className = 'fl-note';
    text.textContent = note;
    item.append(text);
  }
  return { item, hint, minZoom: layer.min_zoom };
}

/** Fills the legend panel; returns a function that redraws the zoom hints. */
export function buildLegend(details, map, layers) {
  const body = details.querySelector('.fl-legend-body') ?? details;
  const list = document.createElement('ul');
  list.className = 'fl-layers';
  const entries = [...layers].reverse().map((layer) => entry(map, layer));
  list.append(...entries.map(({ item }) => item));
  body.replaceChildren(list);

  const update = () => {
    const zoom = map.getZoom();
    for (const { item, hint, minZoom } of entries) {
      const hidden = zoom < minZoom;
      hint.hidden = !hidden;
      item.classList.toggle('fl-out-of-zoom', hidden);
    }
  };
  map.on('zoomend', update);
  update();
  // Small screens open on the map; the panel is one tap away.
  if (window.matchMedia('(max-width: 600px)').matches) details.open = false;
  return update;
}
