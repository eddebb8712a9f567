// Acting on the map: a click (or tap) on a task's diamond opens the task panel, one on an asset
// (station, hydrant, valve, meter, pipe: a few pixels of slack, so thin lines can be hit) the
// asset panel. Both share one side panel (panel.js).

import { createAssetPanel } from './assetPanel.js';
import { createPanel } from './panel.js';
import { createTaskPanel } from './taskPanel.js';
import { TASK_LAYERS } from './tasks.js';

// What a click picks when several things lie under it: tasks first, then the smallest things.
const ASSET_LAYERS = ['stations', 'hydrants', 'valves', 'meters', 'pipes'];
const SLACK_PX = 5;

/** The first task, else asset, drawn within the slack of a point on the screen. */
export function pick(map, point) {
  const box = [[point.x - SLACK_PX, point.y - SLACK_PX], [point.x + SLACK_PX, point.y + SLACK_PX]];
  const layers = [...TASK_LAYERS, ...ASSET_LAYERS].filter((id) => map.getLayer(id)
    && map.getLayoutProperty(id, 'visibility') !== 'none');
  const found = map.queryRenderedFeatures(box, { layers });
  const near = (feature) => {
    if (feature.geometry.type !== 'Point') return 0;
    const at = map.project(feature.geometry.coordinates);
    return Math.hypot(at.x - point.x, at.y - point.y);
  };
  for (const group of [TASK_LAYERS, ...ASSET_LAYERS.map((id) => [id])]) {
    const hits = found.filter((feature) => group.includes(feature.layer.id) && feature.properties.id);
    if (!hits.length) continue;
    hits.sort((a, b) => near(a) - near(b));
    const layer = TASK_LAYERS.includes(hits[0].layer.id) ? 'tasks' : hits[0].layer.id;
    return { layer, id: hits[0].properties.id };
  }
  return null;
}

/**
 * @param {maplibregl.Map} map
 * @param {{api_prefix: string}} config
 * @param {{host: HTMLElement, reloadTasks: () => void}} options
 */
export function createActions(map, config, { host, reloadTasks }) {
  const panel = createPanel({
    host,
    // Back to the map when nothing else had the focus.
    onClose: () => { if (document.activeElement === document.body) map.getCanvas().focus(); },
  });
  const taskPanel = createTaskPanel(panel, config, { onChanged: reloadTasks });
  const assetPanel = createAssetPanel(panel, config, {
    onCreated: (task) => {
      reloadTasks();
      taskPanel.show(task.id);
    },
  });

  // A crew's dot opens the crew's panel (crewPanel.js): the asset under it is not meant.
  const onCrew = (point) => map.getLayer('crews') && map.queryRenderedFeatures(point, { layers: ['crews'] }).length > 0;
  map.on('click', (event) => {
    if (onCrew(event.point)) return;
    const found = pick(map, event.point);
    if (!found) return;
    if (found.layer === 'tasks') taskPanel.show(found.id);
    else assetPanel.show(found.layer, found.id);
  });
  // A hand over what can be clicked.
  map.on('mousemove', (event) => {
    map.getCanvas().style.cursor = onCrew(event.point) || pick(map, event.point) ? 'pointer' : '';
  });

  return {
    openTask: (taskId) => taskPanel.show(taskId),
    openAsset: (layer, assetId) => assetPanel.show(layer, assetId),
    close: panel.close,
    get showing() { return panel.showing; },
    onEvent: (event) => taskPanel.onEvent(event),
  };
}
