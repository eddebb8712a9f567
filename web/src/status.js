// The status bar: whether the server and the live stream answer, and the zoom level.

const SERVER_TEXT = {
  checking: 'checking…',
  ok: 'connected',
  degraded: 'degraded',
  down: 'unreachable, retrying',
};
const LIVE_TEXT = {
  connecting: 'connecting…',
  open: 'connected',
  reconnecting: 'reconnecting…',
};

function item(parent, name, label, texts) {
  const element = document.createElement('span');
  element.className = 'fl-status-item';
  element.dataset.status = name;
  const dot = document.createElement('span');
  dot.className = 'fl-dot';
  dot.setAttribute('aria-hidden', 'true');
  const text = document.createElement('span');
  element.append(dot, text);
  parent.append(element);
  return (state, detail = '') => {
    element.dataset.state = state;
    text.textContent = `${label}: ${texts[state] ?? state}${detail ? ` (${detail})` : ''}`;
  };
}

export function createStatusBar(element) {
  element.replaceChildren();
  const setServer = item(element, 'server', 'Server', SERVER_TEXT);
  const setLive = item(element, 'live', 'Live', LIVE_TEXT);
  const zoom = document.createElement('span');
  zoom.className = 'fl-status-item fl-zoom';
  element.append(zoom);
  setServer('checking');
  setLive('connecting');
  return {
    /** @param {'checking' | 'ok' | 'degraded' | 'down'} state @param {string} [detail] */
    setServer,
    /** @param {'connecting' | 'open' | 'reconnecting'} state */
    setLive: (state) => setLive(state),
    /** @param {number} value */
    setZoom: (value) => {
      zoom.textContent = `Zoom ${value.toFixed(1)}`;
    },
  };
}
