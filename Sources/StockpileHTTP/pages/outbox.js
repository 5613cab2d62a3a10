// The entry page's outbox: every entry is kept on this device (IndexedDB) before anything is sent,
// with its movement id made here and then, so a resend is a replay the server answers with its first
// outcome. The outbox is sent when it can be (at load, when the network returns, every 15 s while
// something waits, on the button), in the order entries were made, and each entry shows its state:
// waiting, recorded, replayed, refused (with the server's reason: it needs someone), or waiting for
// the clerk who made it to sign in (a shared PC never sends one clerk's entries under another's session).
// Without IndexedDB (some private modes) the form posts as it always did.
(function () {
  "use strict";
  var box = document.getElementById("outbox");
  var form = document.getElementById("entry-form");
  if (!box || !form || !window.indexedDB || !window.fetch || !window.Promise) return;
  var text = JSON.parse(box.getAttribute("data-text") || "{}");
  var pageUser = box.getAttribute("data-user");
  var pageSession = box.getAttribute("data-session");
  var generated = box.getAttribute("data-generated");
  var statusLine = document.getElementById("outbox-status");
  var list = document.getElementById("outbox-list");
  var sendButton = document.getElementById("outbox-send");
  var db = null, sending = false, saving = false, offline = !navigator.onLine, signInNeeded = false, lastSent = null;

  function open() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open("stockpile-outbox", 1);
      request.onupgradeneeded = function () {
        var store = request.result.createObjectStore("entries", { keyPath: "id" });
        store.createIndex("seq", "device_seq");
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }
  function all() {
    return new Promise(function (resolve, reject) {
      var request = db.transaction("entries").objectStore("entries").index("seq").getAll();
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }
  // Resolves only when the write is on disk (the transaction completed), never before.
  function put(entries) {
    return new Promise(function (resolve, reject) {
      var tx = db.transaction("entries", "readwrite");
      entries.forEach(function (e) { tx.objectStore("entries").put(e); });
      tx.oncomplete = function () { resolve(); };
      tx.onerror = tx.onabort = function () { reject(tx.error); };
    });
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  // localStorage can be missing or full (some private modes): then the sequence is the time, and
  // the device has no name; the entry is still kept.
  function device() {
    try {
      var id = localStorage.getItem("stockpile-device");
      if (!id) { id = uuid(); localStorage.setItem("stockpile-device", id); }
      return id;
    } catch (e) { return null; }
  }
  function nextSeq() {
    try {
      var n = Number(localStorage.getItem("stockpile-device-seq") || "0") + 1;
      localStorage.setItem("stockpile-device-seq", String(n));
      return n;
    } catch (e) { return Date.now(); }
  }
  function value(name) {
    // namedItem, not elements[name]: elements.item is the collection's item() method, not the field.
    var field = form.elements.namedItem(name);
    if (!field) return "";
    if (field.length !== undefined && !field.tagName) {
      for (var i = 0; i < field.length; i++) if (field[i].checked) return field[i].value;
      return "";
    }
    return field.value.trim();
  }
  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "zh-CN", { hour12: false });
  }

  function render() {
    return all().then(function (entries) {
      var waiting = entries.filter(function (e) { return e.state === "waiting"; });
      var attention = entries.filter(function (e) { return e.state === "refused"; });
      var status = (offline ? text.offline : text.online) + " · " + text.listsAsOf + " " + clock(generated) + " · " +
        text.counts.replace("{w}", waiting.length).replace("{a}", attention.length);
      if (lastSent) status += " · " + text.lastSent + " " + clock(lastSent);
      if (signInNeeded) status += " · " + text.signIn;
      statusLine.textContent = status;
      box.className = "card outbox" + (offline ? " is-offline" : "");
      list.textContent = "";
      // Newest first; recorded ones for a day, what waits or needs someone until it is dealt with.
      var day = Date.now() - 86400000;
      entries.slice().reverse().forEach(function (e) {
        if ((e.state === "recorded" || e.state === "replay" || e.state === "resolved") && new Date(e.made_at).getTime() < day) return;
        var li = document.createElement("li");
        var state = e.state;
        if (e.state === "waiting" && e.recorded_by !== pageUser) state = "otherUser";
        if (e.state === "refused" && e.stored === false) state = "unsendable";
        li.className = "ob-" + state;
        li.setAttribute("data-id", e.id);
        li.setAttribute("data-state", state);
        var label = (text["st." + state] || state).replace("{user}", e.recorded_by);
        var line = label + " · " + (text["kind." + e.kind] || e.kind) + " " + e.item + " · " + text.lot + " " + e.lot + " · " +
          text.quantity + " " + e.quantity + " · " + clock(e.occurred_at);
        // The refusal in the page's words; the server's own sentence (English, with the details) as the tooltip.
        if (e.state === "refused") {
          line += " — " + (text["code." + e.code] || e.code || "") + (e.field ? " (" + e.field + ")" : "") +
            (e.on_hand != null ? " · " + text.onHand + " " + e.on_hand : "");
          li.title = e.reason || "";
        }
        if (e.state === "recorded" && e.attention) line += " — " + (text["code." + e.attention] || e.attention);
        li.textContent = line;
        // What a person can do about it: close a refusal the server keeps (once what happened is
        // recorded), discard one it does not keep, or confirm an entry made in an earlier sign-in.
        if (state === "refused") button(li, text.resolve, function () { resolve(e); });
        if (state === "unsendable") button(li, text.discard, function () { discard(e); });
        if (state === "held") button(li, text.confirmSend, function () { confirmHeld(e); });
        list.appendChild(li);
      });
      box.setAttribute("data-waiting", String(waiting.length));
      box.setAttribute("data-attention", String(attention.length));
    });
  }

  function button(li, label, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "ob-action";
    b.textContent = label;
    b.addEventListener("click", action);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(b);
  }

  // The session's user and CSRF token, asked for now: the cached page's may be stale.
  function session() {
    return fetch("/entry/session", { credentials: "same-origin", cache: "no-store", redirect: "manual", headers: { accept: "application/json" } })
      .then(function (r) {
        offline = false;
        if (r.status !== 200 || (r.headers.get("content-type") || "").indexOf("json") < 0) { signInNeeded = true; return null; }
        signInNeeded = false;
        return r.json();
      });
  }

  function send() {
    if (sending || !db) return Promise.resolve();
    sending = true;
    return all().then(function (entries) {
      var waiting = entries.filter(function (e) { return e.state === "waiting"; });
      if (!waiting.length) return null;
      return session().then(function (s) {
        if (!s) return null;
        // An entry made in an earlier sign-in (the page kept offline, maybe opened by someone else) is
        // not sent until its clerk has looked at it.
        var held = waiting.filter(function (e) { return e.recorded_by === s.user && e.session !== s.session; });
        held.forEach(function (e) { e.state = "held"; });
        var mine = waiting.filter(function (e) { return e.recorded_by === s.user && e.session === s.session; }).slice(0, 200);
        if (!mine.length) return held.length ? put(held) : null;
        var body = {
          sent_at: new Date().toISOString(), device: device(),
          movements: mine.map(function (e) {
            return { id: e.id, facility: e.facility, item: e.item, lot: e.lot, expiry: e.expiry || null, kind: e.kind, quantity: e.quantity,
                     reason: e.reason, occurred_at: e.occurred_at, device_seq: e.device_seq, recorded_by: e.recorded_by };
          })
        };
        return fetch("/entry/sync", {
          method: "POST", credentials: "same-origin", redirect: "manual", cache: "no-store",
          headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": s.csrf },
          body: JSON.stringify(body)
        }).then(function (r) {
          // Anything but a full answer leaves every entry waiting: a resend is safe, a guess is not.
          if (r.status !== 200) { if (r.status === 401 || r.status === 403) signInNeeded = true; return null; }
          return r.json().then(function (answer) {
            var byId = {};
            mine.forEach(function (e) { byId[e.id] = e; });
            var changed = [];
            (answer.results || []).forEach(function (result) {
              var e = byId[result.id];
              if (!e) return;
              e.state = result.status === "refused" ? "refused" : (result.replay ? "replay" : "recorded");
              e.code = result.code || null; e.reason = result.reason || null; e.field = result.field || null;
              e.on_hand = result.on_hand == null ? null : result.on_hand; e.attention = result.attention || null;
              e.stored = result.stored !== false;
              changed.push(e);
            });
            lastSent = new Date().toISOString();
            return put(changed.concat(held));
          });
        });
      });
    }).catch(function () {
      // The server did not answer: offline as far as this page is concerned (navigator.onLine can say
      // online while the county server is down).
      offline = true;
    }).then(function () {
      sending = false;
      return render();
    });
  }

  // Someone has recorded what really happened: the entry leaves the facility's list (and this one),
  // with the clerk's words. Online only; the server keeps who closed it.
  function resolve(e) {
    var words = window.prompt(text.resolvePrompt, "");
    if (!words || !words.trim()) return;
    session().then(function (s) {
      if (!s) return render();
      return fetch("/entry/resolve", {
        method: "POST", credentials: "same-origin", redirect: "manual", cache: "no-store",
        headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": s.csrf },
        body: JSON.stringify({ id: e.id, resolution: words.trim() })
      }).then(function (r) {
        // 409: someone else closed it already; either way it is dealt with.
        if (r.status !== 200 && r.status !== 409) return render();
        e.state = "resolved";
        e.resolution = words.trim();
        return put([e]).then(render);
      });
    }).catch(function () { offline = true; render(); });
  }

  function discard(e) {
    if (!window.confirm(text.discardPrompt)) return;
    var tx = db.transaction("entries", "readwrite");
    tx.objectStore("entries").delete(e.id);
    tx.oncomplete = render;
  }

  function confirmHeld(e) {
    session().then(function (s) {
      if (!s || s.user !== e.recorded_by) return render();
      e.session = s.session;
      e.state = "waiting";
      return put([e]).then(send);
    }).catch(function () { offline = true; render(); });
  }

  // The form's own movement id (for the plain post, when there is no outbox) is made here for each
  // load: a page the worker kept would otherwise post the id it was rendered with, again and again.
  if (form.elements.namedItem("id")) form.elements.namedItem("id").value = uuid();

  form.addEventListener("submit", function (event) {
    if (!db) return;  // the plain form post
    event.preventDefault();
    // A double click or a second Enter while the first entry is being kept: one entry, not two.
    if (saving) return;
    saving = true;
    var kind = value("kind"), code = value("reason_code"), note = value("reason");
    var quantityText = value("quantity");
    var entry = {
      id: uuid(), recorded_by: pageUser, session: pageSession, facility: value("facility"), item: value("item"), lot: value("lot"),
      expiry: value("expiry"), kind: kind, quantity: quantityText === "" ? null : Number(quantityText),
      // An adjustment's reason starts with its code, as the form's (EntryPage.submit).
      reason: kind === "adjustment" && code ? (note ? code + ": " + note : code) : note,
      occurred_at: new Date().toISOString(), made_at: new Date().toISOString(), device_seq: nextSeq(), state: "waiting"
    };
    var notice = document.getElementById("outbox-saved");
    put([entry]).then(function () {
      saving = false;
      // Only now, with the entry on disk, does the page say so and clear the fields for the next one.
      notice.textContent = text.saved + " · " + entry.item + " · " + entry.lot + " · " + entry.quantity;
      notice.hidden = false;
      ["item", "lot", "expiry", "quantity", "reason"].forEach(function (name) { var f = form.elements.namedItem(name); if (f) f.value = ""; });
      form.removeAttribute("data-sent");
      form.elements.namedItem("item").focus();
      return render().then(send);
    }, function (error) {
      saving = false;
      notice.textContent = text.storageFailed + " (" + error + ")";
      notice.hidden = false;
    });
  });

  open().then(function (opened) {
    db = opened;
    box.hidden = false;
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist();
    window.addEventListener("online", function () { offline = false; send(); });
    window.addEventListener("offline", function () { offline = true; render(); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) send(); });
    sendButton.addEventListener("click", function () { send(); });
    setInterval(function () { if (box.getAttribute("data-waiting") !== "0") send(); }, 15000);
    return render().then(send);
  }, function () {
    db = null;  // no outbox here: the form posts to the server as before
  });

  if (navigator.serviceWorker) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
})();
