// The progress page of a console job: ask the job's state every data-poll-ms milliseconds (a plain read on the
// server) and show it, until the job is done (then the link to its result), failed or interrupted.
(function () {
  "use strict";
  var box = document.getElementById("job");
  if (!box) { return; }
  var url = box.getAttribute("data-state-url");
  var every = parseInt(box.getAttribute("data-poll-ms"), 10) || 1000;
  function show(id, text) {
    var el = document.getElementById(id);
    if (text) { el.textContent = text; el.hidden = false; } else { el.hidden = true; }
  }
  function update(s) {
    box.setAttribute("data-state", s.state);
    document.getElementById("job-state-text").textContent = s.state_text;
    document.getElementById("job-message").textContent = s.message || "";
    show("job-error", s.error);
    if (s.result_url) {
      document.getElementById("job-result-link").setAttribute("href", s.result_url);
      document.getElementById("job-result").hidden = false;
    }
    document.getElementById("job-waiting").hidden = !!s.finished;
  }
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s) { update(s); }
        if (!s || !s.finished) { window.setTimeout(poll, every); }
      })
      .catch(function () { window.setTimeout(poll, every * 3); });
  }
  if (box.getAttribute("data-state") !== "done" && box.getAttribute("data-state") !== "failed"
      && box.getAttribute("data-state") !== "interrupted") {
    window.setTimeout(poll, every);
  }
}());
