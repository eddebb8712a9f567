// The dispatcher's map page: wires the map, the legend, the status bar and the live stream.
import 'maplibre-gl/dist/maplibre-gl.css';
import './map.css';

import { createActions } from './actions.js';
import { signOut, watchServer } from './api.js';
import { readConfig } from './config.js';
import { createCrewPanel } from './crewPanel.js';
import { createCrewsLayer, crewLegend } from './crews.js';
import { createFind } from './find.js';
import { createIncidents, incidentLegend } from './incidents.js';
import { createKpiPanel } from './kpis.js';
import { buildLegend, setLayerVisible } from './legend.js';
import { connectLive } from './live.js';
import { createMap } from './map.js';
import { createReports, reportLegend } from './reports.js';
import { createStatusBar } from './status.js';
import { createTasksLayer, flyToTask, taskLegend } from './tasks.js';
import { createChecksPanel, createVerificationOverlay, showVerification } from './verification.js';
import { createWarningsPanel } from './warnings.js';

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
// The live layers, drawn over the tile layers: their legend entries come first.
const liveLayers = [
  { name: 'tasks', title: 'Open tasks by priority and state', min_zoom: 0, legend: taskLegend() },
  { name: 'crews', title: 'Crews at their latest position, by status', min_zoom: 0, legend: crewLegend(config) },
  { name: 'reports', title: 'Field reports by kind', min_zoom: 0, legend: reportLegend() },
  { name: 'incidents', title: 'Active incidents: main breaks and outages', min_zoom: 0, legend: incidentLegend() },
];
buildLegend(legend, map, [...config.layers, ...liveLayers]);

status.setZoom(map.getZoom());
map.on('zoom', () => status.setZoom(map.getZoom()));

let crews = null;
let tasks = null;
const failed = () => server.check(); // the status bar then says what is wrong
const warnings = createWarningsPanel(document.getElementById('warnings'), config, {
  locate: (taskId) => {
    flyToTask(map, config, tasks, taskId).catch(failed);
    actions.openTask(taskId);
  },
  // An alarm's station: close enough to see the pipes and valves around it.
  locatePlace: (lonLat) => map.flyTo({ center: lonLat, zoom: Math.max(map.getZoom(), 16) }),
  onError: failed,
});
// Clicking a task or an asset opens its panel, with what can be done there.
const actions = createActions(map, config, {
  host: document.querySelector('.fl-main'),
  reloadTasks: () => tasks?.load(),
});
// Everything is read again whenever the stream (re)opens: events missed meanwhile are caught up.
const catchUp = () => {
  crews?.load();
  tasks?.load();
  warnings.load();
  reports?.load();
  incidents?.load();
};
// The live layers need only the style, not the first full render: their reads then run while
// the tiles are still on their way, instead of after them.
map.once('style.load', () => {
  crews = createCrewsLayer(map, config, { onError: failed });
  tasks = createTasksLayer(map, config, { onError: failed });
  reports = createReports(map, config, { onError: failed });
  incidents = createIncidents(map, config, { openTask: (taskId) => actions.openTask(taskId), onError: failed });
  for (const { name } of liveLayers) {
    setLayerVisible(map, name, document.getElementById(`fl-toggle-${name}`)?.checked ?? true);
  }
  catchUp();
  verification = createVerificationOverlay(map, config, { onError: failed });
  crewPanel = createCrewPanel(map, config, {
    locateTask: (taskId) => flyToTask(map, config, tasks, taskId).catch(failed),
    onError: failed,
  });
});
// The top bar's panels: recent checks (each drawn on the map by the verification overlay), KPIs.
let verification = null;
let crewPanel = null;
let reports = null; // the Reports panel and its layer, made with the live layers
let incidents = null; // the Incidents panel, its layer and the isolation overlay, likewise
const checks = createChecksPanel(config, { show: showVerification });
const kpis = createKpiPanel(config);
const find = createFind(map, config, {
  openTask: (taskId) => actions.openTask(taskId),
  openAsset: (layer, assetId) => actions.openAsset(layer, assetId),
  flyToTask: (taskId) => flyToTask(map, config, tasks, taskId),
});
const live = connectLive(config.live_url, {
  onState: (state) => {
    status.setLive(state);
    if (state === 'open') catchUp();
  },
  onEvent: (event) => {
    crews?.onEvent(event);
    tasks?.onEvent(event);
    warnings.onEvent(event);
    actions.onEvent(event);
    checks.onEvent(event);
    reports?.onEvent(event);
    incidents?.onEvent(event);
  },
});

// A small handle for tests and the browser console.
window.fieldlineMap = {
  map,
  config,
  live,
  get crews() { return crews; },
  get tasks() { return tasks; },
  warnings,
  actions,
  get verification() { return verification; },
  get crewPanel() { return crewPanel; },
  get reports() { return reports; },
  get incidents() { return incidents; },
  checks,
  kpis,
  find,
  setLayerVisible: (name, visible) => setLayerVisible(map, name, visible),
  loaded: new Promise((resolve) => map.once('load', resolve)),
};

// Last in the top bar, after the panels' buttons.
const signOutButton = document.createElement('button');
signOutButton.type = 'button';
signOutButton.className = 'fl-topbar-button fl-sign-out';
signOutButton.textContent = 'Sign out';
signOutButton.addEventListener('click', () => signOut(config.api_prefix));
document.querySelector('.fl-topbar')?.append(signOutButton);
