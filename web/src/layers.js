// How each tile layer is drawn, and what its legend says. The server's tile layers
// (fieldline/server/map/services.py) carry exactly the attributes used here.
// Colours are the Okabe–Ito palette, which people with the common colour-vision
// deficiencies can tell apart.

import { CREW_LAYERS } from './crews.js';
import { TASK_LAYERS } from './tasks.js';

export const UNKNOWN = '#8c8c8c';

/** [value, label, colour] */
export const PIPE_MATERIALS = [
  ['PVC', 'PVC', '#0072B2'],
  ['PE', 'PE', '#56B4E9'],
  ['ductile_iron', 'Ductile iron', '#009E73'],
  ['cast_iron', 'Cast iron', '#E69F00'],
  ['steel', 'Steel', '#CC79A7'],
  ['asbestos_cement', 'Asbestos cement', '#D55E00'],
];
export const HYDRANT_CONDITIONS = [
  ['good', 'Good', '#009E73'],
  ['fair', 'Fair', '#F0E442'],
  ['poor', 'Poor', '#E69F00'],
  ['out_of_service', 'Out of service', '#D55E00'],
];
export const STATION_KINDS = [
  ['pressure', 'Pressure', '#0072B2'],
  ['flow', 'Flow', '#009E73'],
  ['quality', 'Water quality', '#CC79A7'],
];
const VALVE_OPEN = '#ffffff';
const VALVE_CLOSED = '#1a1a1a';
const VALVE_INOPERABLE = '#D55E00';
const METER = '#6b5ca5';
const ROAD = '#d5cfc4';
const ROAD_MAJOR = '#c4bbab';

/** Short names for the legend; the server's titles are the tooltips. */
export const LABELS = {
  incidents: 'Incidents',
  reports: 'Field reports',
  crews: 'Crews',
  tasks: 'Open tasks',
  stations: 'Stations',
  hydrants: 'Hydrants',
  valves: 'Valves',
  meters: 'Meters',
  pipes: 'Pipes',
  roads: 'Roads',
};

const byValue = (attribute, entries, fallback = UNKNOWN) => [
  'match',
  ['coalesce', ['get', attribute], ''],
  ...entries.flatMap(([value, , colour]) => [value, colour]),
  fallback,
];

// Line width grows with the diameter, and everything grows as one zooms in.
const pipeWidth = (scale) => [
  'interpolate', ['linear'], ['coalesce', ['get', 'diameter_mm'], 150],
  100, 1 * scale,
  300, 2 * scale,
  600, 3.5 * scale,
];
const byZoom = (...stops) => ['interpolate', ['linear'], ['zoom'], ...stops];
const MAJOR_ROADS = ['motorway', 'trunk', 'primary', 'secondary', 'motorway_link', 'trunk_link',
  'primary_link', 'secondary_link'];

const PAINT = {
  roads: {
    type: 'line',
    layout: { 'line-cap': 'round', 'line-join': 'round' },
    paint: {
      'line-color': ['match', ['get', 'highway'], MAJOR_ROADS, ROAD_MAJOR, ROAD],
      // Wider than the mains laid under them: streets read as corridors, pipes as lines.
      'line-width': byZoom(
        12, ['match', ['get', 'highway'], MAJOR_ROADS, 2, 1],
        14, ['match', ['get', 'highway'], MAJOR_ROADS, 7, 4.5],
        16, ['match', ['get', 'highway'], MAJOR_ROADS, 18, 12],
        19, ['match', ['get', 'highway'], MAJOR_ROADS, 80, 55],
      ),
    },
  },
  pipes: {
    type: 'line',
    // Round ends and joins only where lines are wide enough to show them: below zoom 15 a main
    // is a pixel or two wide, and rounding tens of thousands of them is work for nothing.
    layout: {
      'line-cap': ['step', ['zoom'], 'butt', 15, 'round'],
      'line-join': ['step', ['zoom'], 'miter', 15, 'round'],
    },
    paint: {
      'line-color': byValue('material', PIPE_MATERIALS),
      'line-width': byZoom(10, pipeWidth(0.5), 15, pipeWidth(1.2), 19, pipeWidth(3)),
      // Abandoned and planned mains stay visible but step back.
      'line-opacity': ['match', ['get', 'status'], 'abandoned', 0.35, 'planned', 0.6, 1],
    },
  },
  meters: {
    type: 'circle',
    paint: {
      'circle-color': METER,
      'circle-radius': byZoom(16, 2.5, 19, 5),
      'circle-stroke-color': '#ffffff',
      'circle-stroke-width': 1,
    },
  },
  valves: {
    type: 'circle',
    paint: {
      'circle-color': ['match', ['get', 'normal_position'], 'closed', VALVE_CLOSED, VALVE_OPEN],
      'circle-radius': byZoom(13, 2, 18, 6),
      'circle-stroke-color': ['case', ['==', ['get', 'operable'], false], VALVE_INOPERABLE, VALVE_CLOSED],
      'circle-stroke-width': byZoom(13, 1, 18, 2),
    },
  },
  hydrants: {
    type: 'circle',
    paint: {
      'circle-color': byValue('condition', HYDRANT_CONDITIONS),
      'circle-radius': byZoom(13, 3, 18, 8),
      'circle-stroke-color': '#1a1a1a',
      'circle-stroke-width': 1,
    },
  },
  stations: {
    type: 'circle',
    paint: {
      'circle-color': byValue('kind', STATION_KINDS),
      'circle-radius': byZoom(8, 4, 14, 7, 18, 11),
      'circle-stroke-color': '#ffffff',
      'circle-stroke-width': 2.5,
    },
  },
};

// The live layers (GeoJSON sources filled by the page) draw with several style layers.
const LIVE_STYLE_LAYERS = { crews: CREW_LAYERS, tasks: TASK_LAYERS };

/** The ids of the style layers that draw a layer (one each for the tile layers). */
export function styleLayerIds(name) {
  return LIVE_STYLE_LAYERS[name] ?? [name];
}

/** The style layers for a tile layer of the page's configuration. */
export function styleLayers(layer) {
  const paint = PAINT[layer.name];
  if (!paint) return []; // a layer this version of the script does not know how to draw
  return [{
    id: layer.name,
    source: layer.name,
    'source-layer': layer.name,
    minzoom: layer.min_zoom,
    ...paint,
  }];
}

/**
 * What the legend shows for a layer: its keys (swatches) and notes.
 * @returns {{keys: {label: string, colour: string, shape: 'line' | 'dot', ring?: string}[], notes: string[]}}
 */
export function legendFor(layer) {
  const line = ([, label, colour]) => ({ label, colour, shape: 'line' });
  const dot = ([, label, colour]) => ({ label, colour, shape: 'dot', ring: '#1a1a1a' });
  const notes = [];
  if (layer.thinning) {
    const { below_zoom: zoom, attribute, minimum } = layer.thinning;
    const [name, unit] = attribute.endsWith('_mm') ? [attribute.slice(0, -3), ' mm'] : [attribute, ''];
    notes.push(`Below zoom ${zoom}: only ${name} ≥ ${minimum}${unit}`);
  }
  switch (layer.name) {
    case 'pipes':
      return {
        keys: [...PIPE_MATERIALS.map(line), { label: 'Unknown material', colour: UNKNOWN, shape: 'line' }],
        notes: ['Width: diameter; faint: abandoned or planned', ...notes],
      };
    case 'hydrants':
      return { keys: HYDRANT_CONDITIONS.map(dot), notes };
    case 'stations':
      return { keys: STATION_KINDS.map(dot), notes };
    case 'valves':
      return {
        keys: [
          { label: 'Normally open', colour: VALVE_OPEN, shape: 'dot', ring: VALVE_CLOSED },
          { label: 'Normally closed', colour: VALVE_CLOSED, shape: 'dot', ring: VALVE_CLOSED },
          { label: 'Not operable', colour: VALVE_OPEN, shape: 'dot', ring: VALVE_INOPERABLE },
        ],
        notes,
      };
    case 'meters':
      return { keys: [{ label: 'Meter', colour: METER, shape: 'dot', ring: '#ffffff' }], notes };
    case 'roads':
      return { keys: [{ label: 'Road (context)', colour: ROAD_MAJOR, shape: 'line' }], notes };
    default:
      return layer.legend ?? { keys: [], notes }; // the live layers bring their own
  }
}
