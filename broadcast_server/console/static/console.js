// bcast console: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Desktop: the menu is always open. Phones: it folds (the <details> element, no script needed).
  var menu = document.querySelector("details.menu");
  if (menu && window.matchMedia("(min-width: 700px)").matches) menu.open = true;

  // "Chọn tất cả" in a list of targets.
  document.querySelectorAll("[data-check-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      all.closest("fieldset").querySelectorAll("input[name=unit_ids]").forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });

  // Ask before anything that sends sound to loudspeakers.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // Speech takes a few seconds to make: say so, and keep the button from being pressed twice.
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;
      if (form.classList.contains("busy")) { event.preventDefault(); return; }
      form.classList.add("busy");
    });
  });
})();
// Coming back with the browser's back button must not leave a form stuck as busy.
window.addEventListener("pageshow", function () {
  document.querySelectorAll("form.busy").forEach(function (form) { form.classList.remove("busy"); });
});
