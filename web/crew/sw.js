// The crew app's service worker (scope /crew/). The server puts the shell's URLs and a version
// in front of this script (self.FIELDLINE_SHELL), so a new build installs a new worker.
// - the shell (page, manifest, bundle, icons) is kept on install: the app opens offline;
// - the page is asked of the network first (its configuration may change), the cache after;
// - the versioned bundle is served from the cache;
// - map tiles are kept as they are seen, so the last area viewed still draws offline;
// - the API and uploads always go to the network: the app's own outbox handles being offline.

const { version, shell } = self.FIELDLINE_SHELL;
const SHELL_CACHE = `fieldline-crew-${version}`;
const TILE_CACHE = 'fieldline-crew-tiles';
const MAX_TILES = 1000;
const PAGE = shell[0];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      .then((cache) => cache.addAll(shell))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith('fieldline-crew-') && name !== SHELL_CACHE && name !== TILE_CACHE)
            .map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

async function pageFirstFromNetwork(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(PAGE, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(PAGE);
    if (kept) return kept;
    throw error;
  }
}

async function fromCacheFirst(request) {
  const kept = await caches.match(request);
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(SHELL_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

async function trimTiles(cache) {
  const keys = await cache.keys();
  // Oldest first (the order they were put): enough to keep a phone's storage in bounds.
  await Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_TILES)).map((key) => cache.delete(key)));
}

async function tileFromNetworkFirst(request) {
  const cache = await caches.open(TILE_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) {
      await cache.put(request, response.clone());
      trimTiles(cache);
    }
    return response;
  } catch (error) {
    const kept = await cache.match(request);
    if (kept) return kept;
    // No tile and no network: an empty tile draws nothing rather than failing the map.
    return new Response(null, { status: 204 });
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const scope = new URL(self.registration.scope).pathname;
  if (request.mode === 'navigate' && (url.pathname === scope || url.pathname === scope.slice(0, -1))) {
    event.respondWith(pageFirstFromNetwork(request));
  } else if (url.pathname.startsWith(`${scope}static/`) || url.pathname === `${scope}manifest.webmanifest`) {
    event.respondWith(fromCacheFirst(request));
  } else if (url.pathname.startsWith('/tiles/')) {
    event.respondWith(tileFromNetworkFirst(request));
  }
});
