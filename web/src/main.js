// The dispatcher's map page: wires the map, the legend, the status bar and the live stream.
import 'maplibre-gl/dist/maplibre-gl.css';
import './map.css';

import { watchServer } from './api.js';
import { readConfig } from './config.js';
import { buildLegend, setLayerVisible } from './legend.js';
import { connectLive } from './live.js';
import { createMap } from './map.js';
import { createStatusBar } from './status.js';

/** Room around the network on opening, so the legend beside it hides none of it. */
function openingPadding(panel, margin = 32) {
  const map = document.getElementById('map').getBoundingClientRect();
  const box = panel.getBoundingClientRect();
  const beside = panel.open && box.width < map.width / 2; // not on phones: it sits below
  return { top: margin, bottom: margin, left: margin, right: margin + (beside ? box.width : 0) };
}

const config = readConfig();
const status = createStatusBar(document.getElementById('status'));
const server = watchServer(config.ready_url, ({ state, detail }) => status.setServer(state, detail));
const legend = document.getElementById('legend');
const map = createMap('map', config, {
  onTileError: () => server.check(),
  padding: openingPadding(legend),
});
buildLegend(legend, map, config.layers);

status.setZoom(map.getZoom());
map.on('zoom', () => status.setZoom(map.getZoom()));

const live = connectLive(config.live_url, { onState: (state) => status.setLive(state) });

// A small handle for tests and the browser console.
window.fieldlineMap = {
  map,
  config,
  live,
  setLayerVisible: (name, visible) => setLayerVisible(map, name, visible),
  loaded: new Promise((resolve) => map.once('load', resolve)),
};
