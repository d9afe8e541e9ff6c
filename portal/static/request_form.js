// Progressive enhancement for the request form: a live word count, and showing only the
// sections that apply to the chosen action. Without JavaScript every section stays visible.
(function () {
  "use strict";
  var form = document.querySelector(".request-form");
  if (!form) { return; }

  function words(text) {
    var trimmed = text.trim();
    return trimmed ? trimmed.split(/\s+/).length : 0;
  }

  form.querySelectorAll("[data-word-limit]").forEach(function (area) {
    var limit = parseInt(area.getAttribute("data-word-limit"), 10);
    var counter = document.getElementById(area.id + "-count");
    function update() {
      var n = words(area.value);
      var exempt = selectedAction() === "child_protection";
      counter.textContent = exempt ? n + " words" : n + " of " + limit + " words";
      counter.classList.toggle("counter--over", !exempt && n > limit);
    }
    area.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
  });

  function selectedAction() {
    var checked = form.querySelector("input[name=action]:checked");
    return checked ? checked.value : "";
  }

  function applyAction() {
    var action = selectedAction();
    document.querySelectorAll("[data-show-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-show-for") !== action;
    });
    document.querySelectorAll("[data-hide-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-hide-for") === action;
    });
  }
  form.addEventListener("change", applyAction);
  applyAction();
})();
