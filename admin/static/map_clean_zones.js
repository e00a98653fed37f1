// The Map page's clean-zones layer: areas of disinfection tasks done within the clean
// time, from /map/clean-zones.json, fading as the time runs out; amber when the tracks
// covered too little of the area for it to count as clean.
(function () {
  "use strict";
  const element = document.getElementById("map");
  element.addEventListener("citymap:ready", async function (event) {
    const map = event.detail.map;
    const lines = event.detail.lines;
    const summary = document.getElementById("clean-summary");
    const answer = await fetch("/map/clean-zones.json", { credentials: "same-origin" });
    if (!answer.ok) {
      summary.textContent = "Clean zones could not be loaded (" + answer.status + ").";
      return;
    }
    const data = await answer.json();
    const layer = L.geoJSON(data, {
      style: function (f) {
        const p = f.properties;
        const colour = p.clean ? "#2e7d32" : "#f9a825";
        return { color: colour, weight: 2, dashArray: p.clean ? null : "5 4", opacity: 0.3 + 0.7 * p.left, fillColor: colour, fillOpacity: 0.05 + 0.5 * p.left };
      },
      onEachFeature: function (f, shape) {
        const p = f.properties;
        shape.bindPopup(lines(p.name, p.brigade + " · " + p.method, "covered " + Math.round(100 * p.coverage) + "%" + (p.clean ? "" : " (not clean)"), "clean until " + new Date(p.until).toLocaleString()));
      },
    }).addTo(map);
    event.detail.control.addOverlay(layer, "Clean zones");
    summary.textContent = data.features.length + " treated areas in the clean time";
    summary.dataset.ready = "true";
  });
})();
