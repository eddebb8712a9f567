// GPS while signed in: navigator.geolocation.watchPosition keeps the latest reading, and a fix
// is taken once per interval (gps_interval_s for the open tasks' kinds, the shortest wins; the
// `idle` one without a task, so the dispatcher sees where a free crew waits for work),
// with the reading's own time and accuracy. A handheld standing still gets no new readings from
// the browser: the last one (if recent) is taken again at the interval's time, so the trace
// still shows the crew waiting at the site.

const STILL_FOR_MS = 5 * 60_000;

export class Gps extends EventTarget {
  /** @param {(fix: object) => void} onFix */
  constructor(onFix) {
    super();
    this.onFix = onFix;
    this.watch = null;
    this.timer = null;
    this.intervalS = null;
    this.latest = null;
    this.lastFixMs = 0;
  }

  get running() {
    return this.watch !== null;
  }

  /** Start (or change the interval); `null` stops. */
  track(intervalS) {
    if (intervalS == null) {
      this.stop();
      return;
    }
    if (intervalS !== this.intervalS) {
      this.intervalS = intervalS;
      clearInterval(this.timer);
      this.timer = setInterval(() => this._still(), intervalS * 1000);
    }
    if (this.watch === null && 'geolocation' in navigator) {
      this.watch = navigator.geolocation.watchPosition(
        (position) => this._reading(position),
        (error) => this.dispatchEvent(new CustomEvent('error', { detail: error })),
        { enableHighAccuracy: true, maximumAge: 0, timeout: 60_000 },
      );
    }
  }

  stop() {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    clearInterval(this.timer);
    this.watch = null;
    this.timer = null;
    this.intervalS = null;
  }

  /** The latest reading, or one asked for now (a report wants a position even without a task). */
  async current() {
    if (this.latest && Date.now() - this.latest.timestamp < STILL_FOR_MS) return this.latest;
    return new Promise((resolve, reject) =>
      navigator.geolocation.getCurrentPosition(
        (position) => {
          this._seen(position);
          resolve(position);
        },
        reject,
        { enableHighAccuracy: true, maximumAge: 30_000, timeout: 30_000 },
      ),
    );
  }

  _seen(position) {
    this.latest = position;
    this.dispatchEvent(new CustomEvent('position', { detail: position }));
  }

  _reading(position) {
    this._seen(position);
    if (this.intervalS == null) return;
    if (position.timestamp - this.lastFixMs >= this.intervalS * 1000) this._take(position, position.timestamp);
  }

  _still() {
    const now = Date.now();
    if (!this.latest || now - this.latest.timestamp > STILL_FOR_MS) return;
    // A little slack: the timer and the readings need not line up to the millisecond.
    if (now - this.lastFixMs >= this.intervalS * 1000 - 250) this._take(this.latest, now);
  }

  _take(position, timeMs) {
    if (timeMs <= this.lastFixMs) return;
    this.lastFixMs = timeMs;
    const { latitude, longitude, accuracy, speed, heading } = position.coords;
    const fix = { ts: new Date(timeMs).toISOString(), lat: latitude, lon: longitude };
    if (Number.isFinite(accuracy)) fix.acc_m = Math.round(accuracy * 10) / 10;
    if (Number.isFinite(speed)) fix.speed_mps = speed;
    if (Number.isFinite(heading)) fix.heading_deg = heading;
    this.onFix(fix);
  }
}

/** The interval for a set of open tasks: the shortest of their kinds' (else the default);
 * without a task the idle one. */
export function intervalFor(tasks, intervals) {
  if (!intervals) return null;
  if (!tasks.length) return Number.isFinite(intervals.idle) ? intervals.idle : null;
  const found = tasks.map((task) => intervals[task.kind] ?? intervals.default).filter(Number.isFinite);
  return found.length ? Math.min(...found) : null;
}

/** Metres between two [lon, lat] points on a sphere of the Earth's mean radius: enough to tell
 * whether the crew has moved some tens of metres. */
export function metresBetween([lon1, lat1], [lon2, lat2]) {
  const rad = Math.PI / 180;
  const h = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6_371_008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
}
