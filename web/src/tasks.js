// The tasks layer: open tasks (created to on site) at their site, a diamond coloured and sized
// by priority over a ring that says how far the work has come. Filled from GET /api/v1/tasks
// for the map's view, and fetched again (debounced) on live `task` events and after moving.

import { getJson } from './api.js';

/** [priority, label, colour] */
export const PRIORITIES = [
  ['P1', 'P1 emergency', '#B3261E'],
  ['P2', 'P2 urgent', '#E69F00'],
  ['P3', 'P3 routine', '#F0E442'],
  ['P4', 'P4 planned', '#56B4E9'],
];
/** [states, label, ring colour] */
export const STATE_RINGS = [
  [['created'], 'Waiting for a crew', '#D55E00'],
  [['assigned', 'accepted'], 'Assigned, accepted', '#1a1a1a'],
  [['en_route', 'on_site'], 'En route, on site', '#009E73'],
];
export const OPEN_STATES = STATE_RINGS.flatMap(([states]) => states);
export const TASK_LAYERS = ['tasks-state', 'tasks'];
const SIZES = { P1: 22, P2: 18, P3: 16, P4: 14 };
const DEBOUNCE_MS = 400;
const LIMIT = 2000;

/** A diamond of the priority's colour as an image for the symbol layer (no glyphs needed). */
function diamond(size, fill, ratio) {
  const side = Math.round(size * ratio);
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext('2d');
  const half = side / 2;
  const inset = 1.5 * ratio;
  context.beginPath();
  context.moveTo(half, inset);
  context.lineTo(side - inset, half);
  context.lineTo(half, side - inset);
  context.lineTo(inset, half);
  context.closePath();
  context.fillStyle = fill;
  context.fill();
  context.lineWidth = 1.5 * ratio;
  context.strokeStyle = '#1a1a1a';
  context.stroke();
  return context.getImageData(0, 0, side, side);
}

/** A patrol without a site is drawn at its area's middle (the mean of its outer ring). */
function asPoint(geometry) {
  if (!geometry) return null;
  if (geometry.type === 'Point') return geometry;
  const ring = geometry.type === 'Polygon' ? geometry.coordinates[0]
    : geometry.type === 'MultiPolygon' ? geometry.coordinates[0][0] : null;
  if (!ring?.length) return null;
  const mean = (i) => ring.reduce((sum, point) => sum + point[i], 0) / ring.length;
  return { type: 'Point', coordinates: [mean(0), mean(1)] };
}

/**
 * @param {maplibregl.Map} map
 * @param {{api_prefix: string}} config
 * @param {{onError?: (error: Error) => void}} [options]
 */
export function createTasksLayer(map, config, { onError } = {}) {
  const tasks = new Map(); // id -> feature
  let timer = 0;
  let controller = null;

  const url = () => {
    const bounds = map.getBounds();
    // A little beyond the view, so a short pan shows what is there before the next fetch.
    const dx = (bounds.getEast() - bounds.getWest()) * 0.25;
    const dy = (bounds.getNorth() - bounds.getSouth()) * 0.25;
    const bbox = [
      Math.max(bounds.getWest() - dx, -180), Math.max(bounds.getSouth() - dy, -90),
      Math.min(bounds.getEast() + dx, 180), Math.min(bounds.getNorth() + dy, 90),
    ].map((value) => value.toFixed(6)).join(',');
    const query = new URLSearchParams({ state: OPEN_STATES.join(','), f: 'geojson', limit: LIMIT, bbox });
    return `${config.api_prefix}/tasks?${query}`;
  };

  const load = async () => {
    controller?.abort();
    const mine = new AbortController();
    controller = mine;
    try {
      const body = await getJson(url(), { signal: mine.signal });
      tasks.clear();
      for (const found of body.features) {
        const geometry = asPoint(found.geometry);
        if (!geometry) continue;
        tasks.set(found.id, {
          type: 'Feature',
          id: found.id,
          geometry,
          properties: {
            id: found.id,
            priority: found.properties.priority,
            state: found.properties.state,
            title: found.properties.title,
          },
        });
      }
      map.getSource('tasks')?.setData({ type: 'FeatureCollection', features: [...tasks.values()] });
    } catch (error) {
      if (mine.signal.aborted) return; // a newer fetch took its place
      onError?.(error);
    }
  };

  const loadSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, DEBOUNCE_MS);
  };

  const ratio = Math.max(1, Math.round(window.devicePixelRatio || 1));
  for (const [priority, , fill] of PRIORITIES) {
    map.addImage(`task-${priority}`, diamond(SIZES[priority], fill, ratio), { pixelRatio: ratio });
  }
  map.addSource('tasks', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  const ring = ['match', ['get', 'state'],
    ...STATE_RINGS.flatMap(([states, , hex]) => [states, hex]), '#8c8c8c'];
  map.addLayer({
    id: 'tasks-state',
    type: 'circle',
    source: 'tasks',
    paint: {
      'circle-radius': ['match', ['get', 'priority'], 'P1', 14, 'P2', 12, 11],
      'circle-color': 'rgba(0,0,0,0)',
      'circle-stroke-color': ring,
      'circle-stroke-width': 3,
      // Work not yet taken up stands out; work under way steps back a little.
      'circle-stroke-opacity': ['match', ['get', 'state'], 'created', 1, 0.75],
    },
  });
  map.addLayer({
    id: 'tasks',
    type: 'symbol',
    source: 'tasks',
    layout: {
      'icon-image': ['concat', 'task-', ['get', 'priority']],
      'icon-allow-overlap': true,
      'icon-ignore-placement': true,
      // The most urgent on top where tasks overlap.
      'symbol-sort-key': ['match', ['get', 'priority'], 'P1', 4, 'P2', 3, 'P3', 2, 1],
    },
    paint: { 'icon-opacity': ['match', ['get', 'state'], 'created', 1, 0.85] },
  });
  map.on('moveend', loadSoon);

  return {
    load,
    onEvent(event) {
      if (event.type === 'task') loadSoon();
    },
    /** The task as drawn ({id, priority, state, lon, lat}), or undefined. */
    get: (id) => {
      const found = tasks.get(id);
      if (!found) return undefined;
      const [lon, lat] = found.geometry.coordinates;
      return { ...found.properties, lon, lat };
    },
  };
}

/** The legend's keys for the tasks layer. */
export function taskLegend() {
  return {
    keys: [
      ...PRIORITIES.map(([, label, hex]) => ({ label, colour: hex, shape: 'diamond', ring: '#1a1a1a' })),
      ...STATE_RINGS.map(([, label, hex]) => ({ label, colour: 'transparent', shape: 'dot', ring: hex })),
    ],
    notes: ['Open tasks only; a diamond per task, the ring its state'],
  };
}

/** Flies the map to a task: where the layer draws it, else where the API says it is. */
export async function flyToTask(map, config, layer, taskId) {
  let place = layer?.get(taskId);
  if (!place) {
    const task = await getJson(`${config.api_prefix}/tasks/${encodeURIComponent(taskId)}`);
    place = task.site ?? task.assets?.find((asset) => asset.lon !== null);
  }
  if (place) map.flyTo({ center: [place.lon, place.lat], zoom: Math.max(map.getZoom(), 16) });
}
