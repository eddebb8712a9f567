// The crews layer: every crew at its latest position (or its depot), coloured by status, moved
// in place by the live stream's `position` events. A crew whose latest fix is older than the
// server's stale threshold is drawn hollow and faint; a timer re-evaluates that, so a crew
// that stops reporting turns stale without any event.

import maplibregl from 'maplibre-gl';

import { getJson } from './api.js';

/** [status, label, colour] — the statuses of GET /api/v1/crews. */
export const CREW_STATUSES = [
  ['available', 'Available', '#009E73'],
  ['busy', 'Busy', '#0072B2'],
  ['no_signal', 'No signal', '#D55E00'],
  ['off_shift', 'Off shift', '#8c8c8c'],
];
export const CREW_LAYERS = ['crews'];
const LABEL_ZOOM = 14;
const CREW_RING = '#14324a';
const RECHECK_MS = 15000;

const colour = ['match', ['get', 'status'],
  ...CREW_STATUSES.flatMap(([value, , hex]) => [value, hex]), '#8c8c8c'];

function feature(crew) {
  return {
    type: 'Feature',
    id: crew.id,
    geometry: { type: 'Point', coordinates: [crew.lon, crew.lat] },
    properties: { id: crew.id, name: crew.name, status: crew.status, stale: crew.stale },
  };
}

/** A fix time in epoch ms, or null for a depot (no fix to age). */
const fixMs = (time) => (time ? Date.parse(time) : null);

/**
 * @param {maplibregl.Map} map
 * @param {{api_prefix: string, crew_stale_after_s: number}} config
 * @param {{onError?: (error: Error) => void, onChange?: () => void}} [options]
 */
export function createCrewsLayer(map, config, { onError, onChange } = {}) {
  const crews = new Map(); // id -> {id, name, status, lon, lat, fixMs, stale}
  const labels = new Map(); // id -> maplibregl.Marker
  const staleMs = config.crew_stale_after_s * 1000;
  let refetchTimer = 0;

  const isStale = (crew, now = Date.now()) => crew.fixMs !== null && now - crew.fixMs > staleMs;

  const showLabels = () => {
    const visible = map.getLayer('crews')
      && map.getLayoutProperty('crews', 'visibility') !== 'none'
      && map.getZoom() >= LABEL_ZOOM;
    for (const [id, crew] of crews) {
      let marker = labels.get(id);
      if (!visible) {
        marker?.remove();
        labels.delete(id);
        continue;
      }
      if (!marker) {
        const element = document.createElement('span');
        element.className = 'fl-crew-label';
        element.textContent = id;
        marker = new maplibregl.Marker({ element, anchor: 'left', offset: [10, 0] })
          .setLngLat([crew.lon, crew.lat])
          .addTo(map);
        labels.set(id, marker);
      }
      marker.setLngLat([crew.lon, crew.lat]);
      marker.getElement().classList.toggle('fl-stale', crew.stale);
    }
    for (const [id, marker] of labels) {
      if (!crews.has(id)) {
        marker.remove();
        labels.delete(id);
      }
    }
  };

  const draw = () => {
    const source = map.getSource('crews');
    if (!source) return;
    source.setData({ type: 'FeatureCollection', features: [...crews.values()].map(feature) });
    showLabels();
    onChange?.();
  };

  const load = async () => {
    try {
      const body = await getJson(`${config.api_prefix}/crews`);
      crews.clear();
      for (const crew of body.crews) {
        if (!crew.position) continue; // neither a fix nor a depot: nowhere to draw it
        const found = {
          id: crew.id,
          name: crew.name,
          status: crew.status,
          lon: crew.position.lon,
          lat: crew.position.lat,
          fixMs: crew.position.source === 'fix' ? fixMs(crew.position.time) : null,
        };
        found.stale = isStale(found);
        crews.set(crew.id, found);
      }
      draw();
    } catch (error) {
      onError?.(error);
    }
  };

  // Statuses (busy, available, no signal) are the server's to decide: ask again, once.
  const refetchSoon = (delayMs = 1000) => {
    clearTimeout(refetchTimer);
    refetchTimer = setTimeout(load, delayMs);
  };

  /** A live `position` event: the crew moves in place. */
  const move = (event) => {
    const crew = crews.get(event.crew_id);
    const at = fixMs(event.fix_time);
    if (!crew) {
      refetchSoon(); // a crew this page has not seen yet
      return;
    }
    if (crew.fixMs !== null && at !== null && at < crew.fixMs) return; // an older fix
    crew.lon = event.lon;
    crew.lat = event.lat;
    crew.fixMs = at;
    crew.stale = isStale(crew);
    if (crew.status === 'no_signal' || crew.status === 'off_shift') refetchSoon();
    draw();
  };

  const recheck = () => {
    let changed = false;
    const now = Date.now();
    for (const crew of crews.values()) {
      const stale = isStale(crew, now);
      if (stale !== crew.stale) {
        crew.stale = stale;
        changed = true;
      }
    }
    if (changed) draw();
  };

  map.addSource('crews', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({
    id: 'crews',
    type: 'circle',
    source: 'crews',
    paint: {
      // Hollow and faint when stale: the ring keeps the status colour.
      'circle-color': ['case', ['get', 'stale'], 'rgba(255,255,255,0.6)', colour],
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 10, 5, 16, 8, 19, 11],
      // A dark ring tells crews from hydrants and stations of the same colour.
      'circle-stroke-color': ['case', ['get', 'stale'], colour, CREW_RING],
      'circle-stroke-width': 3,
      'circle-opacity': ['case', ['get', 'stale'], 0.6, 1],
      'circle-stroke-opacity': ['case', ['get', 'stale'], 0.6, 1],
    },
  });
  map.on('zoomend', showLabels);
  map.on('styledata', showLabels); // the legend's checkbox hides the layer
  setInterval(recheck, RECHECK_MS);

  return {
    load,
    /** @param {any} event an event of the live stream */
    onEvent(event) {
      if (event.type === 'position') move(event);
      else if (event.type === 'task' && event.crew_id) refetchSoon(); // busy or available now
    },
    /** The crew as drawn: {id, status, lon, lat, stale}, or undefined. */
    get: (id) => {
      const crew = crews.get(id);
      return crew && { id: crew.id, status: crew.status, lon: crew.lon, lat: crew.lat, stale: crew.stale };
    },
    recheck,
  };
}

/** The legend's keys for the crews layer. */
export function crewLegend(config) {
  const minutes = Math.round(config.crew_stale_after_s / 60);
  return {
    keys: [
      ...CREW_STATUSES.map(([, label, hex]) => ({ label, colour: hex, shape: 'dot', ring: CREW_RING })),
      { label: `No fix for ${minutes} min`, colour: '#ffffff', shape: 'dot', ring: '#8c8c8c' },
    ],
    notes: [`Crew ids from zoom ${LABEL_ZOOM}`],
  };
}
