// Stockpile's service worker: keeps the entry page and its scripts so the page opens with the
// network down. It caches the page shell, never data: entries live in the page's IndexedDB outbox
// (pages/outbox.js), which a new version of this worker never touches. Only GETs of the shell
// are answered here; everything else, and every POST, goes to the network as it is.
"use strict";
const CACHE = "stockpile-entry-v1";
const SHELL = ["/entry", "/static/pages.css", "/static/pages.js", "/static/outbox.js", "/static/scan.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.all(SHELL.map((path) => keep(cache, path)))).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("stockpile-entry-") && n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

// A copy is kept only of a real page: not a redirect to the sign-in page, not an error.
async function keep(cache, path, request) {
  try {
    const response = await fetch(request || path, request ? undefined : { credentials: "same-origin", cache: "no-store" });
    if (response.ok && !response.redirected && response.type === "basic") await cache.put(path, response.clone());
    return response;
  } catch (e) {
    return null;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  // Network first, so the lists are fresh whenever the server answers; the kept copy when it does
  // not (within 4 s: a county link that hangs is as good as down). A server that answers with a
  // redirect (the session ended) is followed: the clerk must sign in, the outbox waits.
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const fresh = await Promise.race([keep(cache, url.pathname, request), new Promise((r) => setTimeout(() => r(null), 4000))]);
    // The server answered: its answer stands (a sign-in page, a "forbidden"), unless it is the
    // server's own failure (5xx: the database is down), when the kept page lets the clerk go on.
    if (fresh && fresh.status < 500) return fresh;
    const kept = await cache.match(url.pathname);
    return kept || fresh || new Response("offline", { status: 503, headers: { "content-type": "text/plain; charset=utf-8" } });
  })());
});
