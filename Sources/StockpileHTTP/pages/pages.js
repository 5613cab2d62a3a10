// Stockpile pages: a little plain JavaScript; every page also works without it.

// Signing out forgets the entry page kept for offline use, so the next person at this PC cannot
// open it (the server also says Clear-Site-Data: "cache"). Unsent entries are not cache: they stay.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form[action='/logout']"), function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.caches || form.getAttribute("data-cleared")) return;
      event.preventDefault();
      caches.keys().then(function (names) {
        return Promise.all(names.filter(function (n) { return n.indexOf("stockpile-entry-") === 0; }).map(function (n) { return caches.delete(n); }));
      }).catch(function () {}).then(function () { form.setAttribute("data-cleared", "1"); form.submit(); });
    });
  });
});
(function () {
  "use strict";
  var form = document.getElementById("entry-form");
  if (!form) return;
  // A barcode scanner types the code and presses Enter: move to the next field instead of submitting
  // a half-filled form. Enter in the last field (or on the button) still submits.
  var fields = Array.prototype.slice.call(form.querySelectorAll("input:not([type=hidden]):not([type=radio]), select"));
  fields.forEach(function (field, i) {
    if (!field.hasAttribute("data-scan")) return;
    field.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && i + 1 < fields.length) {
        event.preventDefault();
        fields[i + 1].focus();
      }
    });
  });
  // One submission per rendered form: a second click while the first is on its way does nothing
  // (the server would treat it as a replay anyway: the hidden id is the movement's id).
  form.addEventListener("submit", function (event) {
    if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
  });
})();

// Scanning into the entry form, offline too (pages/scan.js is the same parser as the server's,
// run over the same vectors). A keyboard-wedge scanner types the code into the item field and
// presses Enter: the code is read here, its item found among the codes the page carries, and the
// lot and expiry filled in from it. An unreadable or unknown code says so and fills in nothing.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var form = document.getElementById("entry-form");
  if (!form || !window.StockpileScan) return;
  var codes = JSON.parse(form.getAttribute("data-codes") || "{}");
  var words = JSON.parse(form.getAttribute("data-scan-text") || "{}");
  var today = form.getAttribute("data-today");
  var field = function (name) { return form.elements.namedItem(name); };
  var item = field("item"), message = document.getElementById("scan-message");
  var known = {};
  Array.prototype.forEach.call(document.querySelectorAll("#item-codes option"), function (o) { known[o.value] = o.textContent; });

  function insert(input, text) {
    var start = input.selectionStart == null ? input.value.length : input.selectionStart;
    var end = input.selectionEnd == null ? start : input.selectionEnd;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    input.selectionStart = input.selectionEnd = start + text.length;
  }
  // GS (FNC1) as a scanner types it: Ctrl+], or Alt with 0 2 9 on the keypad. A text field would
  // drop either, and a lot would then run into the serial after it.
  var altDigits = null;
  Array.prototype.forEach.call(form.querySelectorAll("[data-scan]"), function (input) {
    input.addEventListener("keydown", function (e) {
      if (e.ctrlKey && (e.key === "]" || e.code === "BracketRight")) { e.preventDefault(); insert(input, "\u001d"); return; }
      if (e.altKey && /^Numpad[0-9]$/.test(e.code)) { altDigits = (altDigits || "") + e.code.slice(6); e.preventDefault(); }
    });
    input.addEventListener("keyup", function (e) {
      if (e.key === "Alt" && altDigits !== null) { if (Number(altDigits) === 29) insert(input, "\u001d"); altDigits = null; }
    });
  });

  function say(text, bad) {
    message.textContent = text;
    message.className = "scan-message" + (bad ? " error" : "");
    message.hidden = false;
  }
  function looksScanned(raw) {
    return /[\u001d|]/.test(raw) || /^(\]|\(|https?:|ma\.)/i.test(raw) || /^[0-9]{8,}$/.test(raw);
  }
  function read(raw) {
    var r = window.StockpileScan.parse(raw, today);
    if (r.error) { item.value = ""; say(words.unreadable + r.error.reason, true); return; }
    var key = r.gtin || r.ma_device_id || r.drug_code;
    var named = key && codes[key];
    if (!named) { item.value = ""; say(words.unknown.replace("{code}", key || raw), true); return; }
    item.value = named.item;
    if (r.lot) field("lot").value = r.lot;
    if (r.expiry) field("expiry").value = r.expiry;
    if (r.count) field("quantity").value = String(r.count * named.units);
    var parts = [words.read, (known[named.item] || named.item)];
    if (r.lot) parts.push(r.lot);
    if (r.expiry) parts.push(r.expiry);
    if (named.units > 1) parts.push(words.perCode.replace("{units}", named.units).replace("{level}", named.level || ""));
    r.warnings.forEach(function (w) {
      var key = w.indexOf("separator_missing") === 0 ? "separator_missing" : w;
      if (words[key]) parts.push(words[key]);
    });
    say(parts.join(" · "), r.warnings.some(function (w) { return w.indexOf("separator_missing") === 0; }));
    (r.lot ? (r.expiry ? field("quantity") : field("expiry")) : field("lot")).focus();
  }
  // Before the field's own Enter handling (which moves to the next field).
  item.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") return;
    var raw = item.value.replace(/^\s+|\s+$/g, "");
    if (!raw || Object.prototype.hasOwnProperty.call(known, raw) || !looksScanned(raw)) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    read(raw);
  }, true);
});
