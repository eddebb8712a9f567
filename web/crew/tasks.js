// The crew's tasks: as the server last told (the tasks URL, the inbox) and as the crew last set
// them. A status the crew set that still waits in the outbox wins over the server's older view.

export const PATH = ['assigned', 'accepted', 'en_route', 'on_site', 'completed'];
export const OPEN = ['assigned', 'accepted', 'en_route', 'on_site'];
export const STATUS_LABELS = {
  accepted: 'Accept',
  en_route: 'On the way',
  on_site: 'On site',
  completed: 'Completed',
};
const GONE = {
  'task.transferred': 'given to another crew',
  'task.withdrawn': 'offer withdrawn',
  'task.cancelled': 'cancelled',
};
const SEEN_KEPT = 200;

export class TaskBook extends EventTarget {
  /** @param {import('idb').IDBPDatabase} db */
  constructor(db) {
    super();
    this.db = db;
    this.tasks = new Map();
    this.selected = null;
    this.notices = [];
  }

  async load() {
    for (const task of await this.db.getAll('tasks')) this.tasks.set(task.id, task);
    this._changed();
  }

  list() {
    const rank = (task) => (OPEN.includes(task.state) ? 0 : 1);
    return [...this.tasks.values()].sort(
      (a, b) => rank(a) - rank(b) || String(a.priority).localeCompare(String(b.priority)) || a.id.localeCompare(b.id),
    );
  }

  open() {
    return this.list().filter((task) => OPEN.includes(task.state));
  }

  get(id) {
    return this.tasks.get(id) ?? null;
  }

  select(id) {
    this.selected = id;
    this._changed();
  }

  /** The server's list of the crew's tasks; statuses still waiting to be sent stay. */
  async replace(found, pendingStates) {
    const tx = this.db.transaction('tasks', 'readwrite');
    const kept = new Map();
    for (const task of found) {
      const pending = pendingStates.get(task.id);
      const old = this.tasks.get(task.id);
      kept.set(task.id, { ...task, state: pending ?? task.state, progress: old?.progress ?? null });
    }
    // A completion the server has not heard of yet keeps its task on the list.
    for (const [id, state] of pendingStates) {
      if (!kept.has(id) && this.tasks.has(id)) kept.set(id, { ...this.tasks.get(id), state });
    }
    await tx.store.clear();
    await Promise.all([...[...kept.values()].map((task) => tx.store.put(task)), tx.done]);
    this.tasks = kept;
    this._changed();
  }

  async put(task) {
    const old = this.tasks.get(task.id);
    const merged = { ...old, ...task, progress: task.progress ?? old?.progress ?? null };
    this.tasks.set(task.id, merged);
    await this.db.put('tasks', merged);
    this._changed();
    return merged;
  }

  async remove(id, reason) {
    const task = this.tasks.get(id);
    this.tasks.delete(id);
    await this.db.delete('tasks', id);
    if (task) this.notices.unshift(`${task.title || id}: ${reason}`);
    if (this.selected === id) this.selected = null;
    this._changed();
  }

  /** One inbox message; a repeat (QoS 1 may deliver twice) changes nothing. */
  async apply(message) {
    const seen = (await this.db.get('kv', 'seen')) ?? [];
    if (message.message_id && seen.includes(message.message_id)) return;
    if (message.task && ['task.assigned', 'task.changed', 'task.reopened'].includes(message.kind)) {
      await this.put(message.task);
      if (message.kind === 'task.reopened') {
        this.notices.unshift(`${message.task.title || message.task_id}: reopened${message.reasons ? ` (${message.reasons})` : ''}`);
        this._changed();
      }
    } else if (GONE[message.kind]) {
      await this.remove(message.task_id, GONE[message.kind]);
    }
    if (message.message_id) await this.db.put('kv', [message.message_id, ...seen].slice(0, SEEN_KEPT), 'seen');
  }

  _changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }
}

/** May the crew say `status` now? Only forward along the path (the server fills the steps). */
export function canReport(task, status) {
  const at = PATH.indexOf(task.state);
  return at >= 0 && PATH.indexOf(status) > at;
}
