// The MQTT connection over WebSockets (MQTT.js): a persistent session (clean=false, the fixed
// client id the server gave at sign-in), so the broker keeps the inbox's QoS 1 messages while
// the handheld is away and MQTT.js sends a message again after a reconnect until its PUBACK.
// The browser's offline event closes the socket at once (a WebSocket may otherwise hang on a
// dead network until the keep-alive runs out); the online event reconnects without waiting.

import mqtt from 'mqtt';

const RECONNECT_MS = 3000;
const KEEPALIVE_S = 30;

/** The broker's WebSocket URL, relative ones taken against the page. */
export function wsUrl(url, page = window.location.href) {
  const found = new URL(url, page);
  if (found.protocol === 'http:') found.protocol = 'ws:';
  if (found.protocol === 'https:') found.protocol = 'wss:';
  return found.toString();
}

export class Link extends EventTarget {
  /**
   * @param {{ws_url: string, client_id: string, username: string, password: string,
   *   topics: {inbox: string}}} mqttConfig the sign-in's `mqtt`: the broker's WebSocket
   *   listener takes only a device's own login, which reads its crew's inbox alone.
   */
  constructor(mqttConfig) {
    super();
    this.config = mqttConfig;
    this.client = null;
    this.state = 'offline';
    this.onOffline = () => this.drop();
    this.onOnline = () => this.client?.reconnect();
  }

  get connected() {
    return !!this.client?.connected;
  }

  start() {
    const client = mqtt.connect(wsUrl(this.config.ws_url), {
      clientId: this.config.client_id,
      username: this.config.username,
      password: this.config.password,
      clean: false,
      protocolVersion: 4,
      keepalive: KEEPALIVE_S,
      reconnectPeriod: RECONNECT_MS,
      connectTimeout: 10_000,
      resubscribe: true,
    });
    this.client = client;
    client.on('connect', (ack) => {
      // The broker keeps the subscription in the session; asking again is harmless. Online
      // only once it holds: the task list fetched then misses nothing sent before.
      client.subscribe(this.config.topics.inbox, { qos: 1 }, (error) => {
        if (error) console.warn('inbox subscription failed', error);
        if (client.connected) this._state('online', { sessionPresent: ack.sessionPresent });
      });
    });
    client.on('close', () => this._state('offline'));
    client.on('reconnect', () => this._state('connecting'));
    client.on('error', (error) => console.warn('mqtt:', error.message));
    client.on('message', (topic, payload) => {
      let message;
      try {
        message = JSON.parse(new TextDecoder().decode(payload));
      } catch {
        console.warn('inbox: not JSON', topic);
        return;
      }
      this.dispatchEvent(new CustomEvent('message', { detail: { topic, message } }));
    });
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
  }

  /** Close the socket now; MQTT.js keeps unacknowledged messages and tries again. */
  drop() {
    if (this.client?.stream) this.client.stream.destroy();
  }

  /** Resolves on the PUBACK; a message still in flight when the socket closes is sent again. */
  publish(topic, payload) {
    return new Promise((resolve, reject) => {
      this.client.publish(topic, payload, { qos: 1 }, (error) => (error ? reject(error) : resolve()));
    });
  }

  stop() {
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    this.client?.end(true);
    this.client = null;
    this._state('offline');
  }

  _state(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...detail } }));
  }
}
