// What the Map page's layers of a range of days share (the ambulance calls, the feeds):
// the form #NAME-range with its days #NAME-from and #NAME-to, the line #NAME-summary
// (data-ready="true" once drawn) and the JSON at URL for the days, drawn by the layer's
// own draw(data) each time the form is sent. Texts go in as text, never HTML.
function mapRangeLayer(name, url, failures, draw) {
  "use strict";
  const form = document.getElementById(name + "-range");
  const summary = document.getElementById(name + "-summary");
  // Empty at first: the server takes the city's last 7 days and the answer fills them in
  // (a browser's own date is UTC's or the viewer's, a day off the city's for part of
  // each day).
  const from = document.getElementById(name + "-from");
  const to = document.getElementById(name + "-to");

  async function load() {
    const query = new URLSearchParams({ from: from.value, to: to.value });
    const answer = await fetch(url + "?" + query, { credentials: "same-origin" });
    if (!answer.ok) {
      summary.textContent = failures.load + " (" + answer.status + "): " + (await answer.text());
      return;
    }
    const data = await answer.json();
    from.value = data.from;
    to.value = data.to;
    draw(data);
    summary.dataset.ready = "true";
  }

  function show() {
    summary.dataset.ready = "";
    load().catch(function (error) { summary.textContent = failures.draw + ": " + error.message; });
  }
  form.addEventListener("submit", function (event) { event.preventDefault(); show(); });
  show();
}
