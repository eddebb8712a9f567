// The app's IndexedDB (through idb): what must survive a reload or a night without network.
// - outbox: every action, in the order it was taken, until the server acknowledged it;
// - failed: actions the server refused for good (kept to be seen, never sent again);
// - uploads: photo uuid -> the server's upload id, once uploaded;
// - tasks: the crew's tasks as last known, with the state the crew last set;
// - kv: the sign-in, the remembered form, the inbox messages already applied.

import { openDB } from 'idb';

const NAME = 'fieldline-crew';
const VERSION = 1;

/** @returns {Promise<import('idb').IDBPDatabase>} */
export function openStore() {
  return openDB(NAME, VERSION, {
    upgrade(db) {
      db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
      db.createObjectStore('failed', { keyPath: 'seq' });
      db.createObjectStore('uploads', { keyPath: 'uuid' });
      db.createObjectStore('tasks', { keyPath: 'id' });
      db.createObjectStore('kv');
    },
  });
}
