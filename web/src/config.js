// The configuration the server writes into the page (fieldline/server/map/payloads.py).

/**
 * @typedef {{below_zoom: number, attribute: string, minimum: number}} Thinning
 * @typedef {{name: string, title: string, geometry_type: string, min_zoom: number,
 *   tiles: string, thinning: Thinning | null}} LayerConfig
 * @typedef {{api_prefix: string, live_url: string, ready_url: string,
 *   extent: [number, number, number, number] | null, max_zoom: number,
 *   source_max_zoom: number, base_tiles: {url: string, attribution: string} | null,
 *   crew_stale_after_s: number, layers: LayerConfig[]}} MapConfig
 */

/** @returns {MapConfig} */
export function readConfig(doc = document) {
  const element = doc.getElementById('fieldline-config');
  if (!element) throw new Error('the page carries no #fieldline-config');
  return JSON.parse(element.textContent);
}

/** A URL of this server as an absolute URL: MapLibre fetches tiles from a worker. */
export function absolute(path, base = window.location.href) {
  // Not `new URL()`: it would escape the braces of a tile template.
  if (/^https?:\/\//.test(path)) return path;
  return new URL(base).origin + (path.startsWith('/') ? path : `/${path}`);
}
