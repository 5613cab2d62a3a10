// Stockpile pages: a little plain JavaScript; every page also works without it.
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
