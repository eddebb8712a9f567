// "Find" in the top bar: an asset's or a task's id typed in (H-000123, T-000045) flies the
// map there and opens its panel, so every asset is reachable from the keyboard too. The
// layer comes from the id's prefix (the page's configuration gives each layer's).

import { ApiError, getJson } from './api.js';
import { el } from './panel.js';

const TASK_PREFIX = 'T';

/** The layer whose ids start with the prefix of `id`, or null. */
function layerOf(config, id) {
  const prefix = id.slice(0, id.lastIndexOf('-'));
  return config.layers.find((layer) => layer.id_prefix === prefix) ?? null;
}

/** The middle of a GeoJSON geometry's coordinates (a point's own, a line's middle vertex). */
function middle(geometry) {
  const coordinates = geometry.type === 'Point' ? [geometry.coordinates] : geometry.coordinates.flat(geometry.type === 'LineString' ? 0 : 1);
  return coordinates[Math.floor(coordinates.length / 2)];
}

/**
 * @param {maplibregl.Map} map
 * @param {{api_prefix: string, layers: {name: string, id_prefix: string}[]}} config
 * @param {{openTask: (id: string) => void, openAsset: (layer: string, id: string) => void,
 *   flyToTask: (id: string) => Promise<void>}} actions
 */
export function createFind(map, config, { openTask, openAsset, flyToTask }) {
  const input = el('input', {
    id: 'fl-find', type: 'search', className: 'fl-find-input', placeholder: 'H-000123, T-000045',
    autocomplete: 'off', spellcheck: false, 'aria-describedby': 'fl-find-problem',
  });
  const problem = el('p', { id: 'fl-find-problem', className: 'fl-find-problem', role: 'alert', hidden: true });
  const form = el(
    'form',
    { className: 'fl-find', role: 'search', 'aria-label': 'Find an asset or a task' },
    el('label', { className: 'fl-visually-hidden', for: 'fl-find' }, 'Asset or task id'),
    input,
    el('button', { type: 'submit', className: 'fl-topbar-button' }, 'Find'),
    problem,
  );
  const say = (text) => {
    problem.textContent = text;
    problem.hidden = !text;
    input.setAttribute('aria-invalid', String(Boolean(text)));
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = input.value.trim().toUpperCase();
    if (!id) return;
    say('');
    try {
      if (id.startsWith(`${TASK_PREFIX}-`)) {
        await flyToTask(id);
        openTask(id);
        return;
      }
      const layer = layerOf(config, id);
      if (!layer) {
        say(`${id} is no asset or task id (${[TASK_PREFIX, ...config.layers.map((l) => l.id_prefix)].join('-, ')}-…)`);
        return;
      }
      const found = await getJson(`${config.api_prefix}/assets/${layer.name}/${encodeURIComponent(id)}`);
      map.flyTo({ center: middle(found.geometry), zoom: Math.max(map.getZoom(), 17) });
      openAsset(layer.name, id);
    } catch (error) {
      say(error instanceof ApiError && error.status === 404 ? `No ${id}` : `Not found: ${error.message}`);
    }
  });
  input.addEventListener('input', () => say(''));

  const bar = document.querySelector('.fl-topbar');
  bar?.insertBefore(form, bar.querySelector('.fl-topbar-tools'));
  return { form, input };
}
