// The small map: the network's tiles under the crew's position, the selected task's site,
// the assets to check, for a patrol the pipes and checkpoints still to cover (/progress), and
// the way there (/route) under the site.

import maplibregl from 'maplibre-gl';

const EMPTY = { type: 'FeatureCollection', features: [] };
const COLOURS = { me: '#0072B2', site: '#D55E00', asset: '#E69F00', todo: '#CC79A7', done: '#009E73', pipe: '#7aa6c2', route: '#0072B2' };

function style(config) {
  const sources = {};
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#f3f1ec' } }];
  // Not through URL(): it would escape the template's braces.
  const absolute = (url) => (url.startsWith('/') ? `${window.location.origin}${url}` : url);
  for (const [name, url] of Object.entries(config.tiles)) {
    sources[name] = { type: 'vector', tiles: [absolute(url)], maxzoom: config.source_max_zoom };
  }
  if (sources.roads) {
    layers.push({ id: 'roads', type: 'line', source: 'roads', 'source-layer': 'roads', paint: { 'line-color': '#d5cfc4', 'line-width': 3 } });
  }
  if (sources.pipes) {
    layers.push({ id: 'pipes', type: 'line', source: 'pipes', 'source-layer': 'pipes', paint: { 'line-color': COLOURS.pipe, 'line-width': 1.5 } });
  }
  for (const name of ['valves', 'hydrants']) {
    if (!sources[name]) continue;
    layers.push({
      id: name,
      type: 'circle',
      source: name,
      'source-layer': name,
      minzoom: 15,
      paint: { 'circle-radius': 3, 'circle-color': name === 'valves' ? '#1a1a1a' : '#009E73' },
    });
  }
  for (const id of ['route', 'progress', 'assets', 'sites', 'me']) sources[id] = { type: 'geojson', data: EMPTY };
  layers.push(
    // Dashed when it is a straight-line estimate (no road near the crew or the site).
    { id: 'route', type: 'line', source: 'route', filter: ['!=', ['get', 'on_roads'], false], layout: { 'line-cap': 'round', 'line-join': 'round' }, paint: { 'line-color': COLOURS.route, 'line-width': 5, 'line-opacity': 0.75 } },
    { id: 'route-estimate', type: 'line', source: 'route', filter: ['==', ['get', 'on_roads'], false], paint: { 'line-color': COLOURS.route, 'line-width': 4, 'line-opacity': 0.75, 'line-dasharray': [1.5, 1.5] } },
    { id: 'progress-lines', type: 'line', source: 'progress', filter: ['!=', ['geometry-type'], 'Point'], paint: { 'line-color': COLOURS.todo, 'line-width': 5, 'line-opacity': 0.8 } },
    {
      id: 'progress-points',
      type: 'circle',
      source: 'progress',
      // The site is drawn from the task; checkpoints and meters filled once passed.
      filter: ['all', ['==', ['geometry-type'], 'Point'], ['!=', ['get', 'role'], 'site']],
      paint: {
        'circle-radius': 6,
        'circle-color': ['case', ['==', ['get', 'passed'], true], COLOURS.done, '#fff'],
        'circle-stroke-color': COLOURS.todo,
        'circle-stroke-width': 3,
      },
    },
    { id: 'assets', type: 'circle', source: 'assets', paint: { 'circle-radius': 6, 'circle-color': COLOURS.asset, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } },
    { id: 'sites', type: 'circle', source: 'sites', paint: { 'circle-radius': 9, 'circle-color': COLOURS.site, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } },
    { id: 'me-accuracy', type: 'circle', source: 'me', paint: { 'circle-radius': 14, 'circle-color': COLOURS.me, 'circle-opacity': 0.15 } },
    { id: 'me', type: 'circle', source: 'me', paint: { 'circle-radius': 7, 'circle-color': COLOURS.me, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } },
  );
  return { version: 8, sources, layers };
}

const point = (lon, lat, properties = {}) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: [lon, lat] }, properties });

/** Every feature in a /progress answer, wherever it keeps them (one or several collections). */
export function progressFeatures(body) {
  const found = [];
  const walk = (value, depth) => {
    if (!value || typeof value !== 'object' || depth > 3) return;
    if (value.type === 'FeatureCollection' && Array.isArray(value.features)) {
      found.push(...value.features.filter((f) => f?.geometry));
    } else if (value.type === 'Feature' && value.geometry) {
      found.push(value);
    } else {
      for (const inner of Object.values(value)) walk(inner, depth + 1);
    }
  };
  walk(body, 0);
  return found;
}

export class TaskMap {
  constructor(container, config) {
    this.ready = false;
    this.pending = {};
    this.centred = null;
    try {
      this.map = new maplibregl.Map({
        container,
        style: style(config),
        center: [0, 20],
        zoom: 1,
        maxZoom: config.max_zoom,
        dragRotate: false,
        touchPitch: false,
        attributionControl: false,
      });
    } catch (error) {
      // No WebGL on this device: the task list works without the map.
      container.textContent = 'The map cannot be shown on this device.';
      this.map = null;
      return;
    }
    this.map.touchZoomRotate.disableRotation();
    this.map.on('load', () => {
      this.ready = true;
      for (const [id, data] of Object.entries(this.pending)) this.map.getSource(id).setData(data);
      this.pending = {};
    });
  }

  _set(id, data) {
    if (!this.map) return;
    if (this.ready) this.map.getSource(id).setData(data);
    else this.pending[id] = data;
  }

  showMe(position) {
    if (!position) return;
    const { longitude, latitude, accuracy } = position.coords;
    this._set('me', { type: 'FeatureCollection', features: [point(longitude, latitude, { acc_m: accuracy })] });
  }

  /** The way to the selected task (a GeoJSON Feature from /route), or none. */
  showRoute(feature) {
    this._set('route', feature ? { type: 'FeatureCollection', features: [feature] } : EMPTY);
  }

  /** The selected task (or none), and where to look. */
  showTask(task, me) {
    const sites = [];
    const assets = [];
    if (task?.site) sites.push(point(task.site.lon, task.site.lat, { id: task.id }));
    for (const asset of task?.assets ?? []) {
      if (asset.lon != null && asset.lat != null) assets.push(point(asset.lon, asset.lat, { id: asset.id, role: asset.role }));
    }
    this._set('sites', { type: 'FeatureCollection', features: sites });
    this._set('assets', { type: 'FeatureCollection', features: assets });
    const progress = task?.progress ? progressFeatures(task.progress) : [];
    this._set('progress', { type: 'FeatureCollection', features: progress });
    const key = task ? `${task.id}:${progress.length}` : null;
    if (!this.map || key === this.centred) return;
    this.centred = key;
    const points = [...sites, ...assets].map((f) => f.geometry.coordinates);
    for (const feature of progress) collect(feature.geometry, points);
    if (me) points.push([me.coords.longitude, me.coords.latitude]);
    if (points.length === 1) this.map.jumpTo({ center: points[0], zoom: 16 });
    else if (points.length > 1) {
      const bounds = new maplibregl.LngLatBounds(points[0], points[0]);
      for (const p of points) bounds.extend(p);
      this.map.fitBounds(bounds, { padding: 40, maxZoom: 17, duration: 0 });
    }
  }
}

function collect(geometry, out) {
  if (!geometry) return;
  if (geometry.type === 'GeometryCollection') {
    for (const inner of geometry.geometries) collect(inner, out);
    return;
  }
  const walk = (c) => (typeof c[0] === 'number' ? out.push(c) : c.forEach(walk));
  walk(geometry.coordinates);
}
