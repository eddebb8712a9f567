// The map itself: a style with one vector source per tile layer, the optional base map under
// them, the network's extent to open on.

import maplibregl from 'maplibre-gl';

import { absolute } from './config.js';
import { styleLayers } from './layers.js';

const BACKGROUND = '#f3f1ec';
const WORLD = { center: [0, 20], zoom: 1 };

/** The MapLibre style for the page's configuration. */
export function buildStyle(config) {
  const sources = {};
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': BACKGROUND } }];
  if (config.base_tiles) {
    sources.base = {
      type: 'raster',
      tiles: [config.base_tiles.url],
      tileSize: 256,
      attribution: config.base_tiles.attribution || undefined,
    };
    layers.push({ id: 'base', type: 'raster', source: 'base' });
  }
  for (const layer of config.layers) {
    sources[layer.name] = {
      type: 'vector',
      tiles: [absolute(layer.tiles)],
      minzoom: layer.min_zoom,
      maxzoom: config.source_max_zoom,
      // Features are known by their public id (P-000123): hover and selection states use it.
      promoteId: 'id',
    };
    layers.push(...styleLayers(layer));
  }
  return { version: 8, sources, layers };
}

/**
 * @param {HTMLElement | string} container
 * @param {import('./config.js').MapConfig} config
 * @param {{onTileError?: (error: any) => void, padding?: maplibregl.PaddingOptions}} [options]
 *   `padding`: room kept free around the network on opening (for panels over the map)
 */
export function createMap(container, config, { onTileError, padding } = {}) {
  const opening = config.extent
    ? { bounds: config.extent, fitBoundsOptions: { padding: padding ?? 32, maxZoom: 17 } }
    : WORLD;
  const map = new maplibregl.Map({
    container,
    style: buildStyle(config),
    maxZoom: config.max_zoom,
    // A dispatcher's map stays north up and flat: rotation by touch only gets in the way.
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    attributionControl: { compact: true },
    // Symbols (the tasks) appear at once: a fade only holds back the map's `idle`.
    fadeDuration: 0,
    ...opening,
  });
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.on('error', (event) => {
    // A tile that failed to load: the server may be away. Other errors are logged.
    if (event.sourceId || event.tile) onTileError?.(event.error);
    else console.error(event.error);
  });
  return map;
}
