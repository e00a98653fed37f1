// The Map page's ambulance layer: calls of a day range from /map/ambulance.json as
// points, a heat layer (calls per grid cell) and clusters (the range: map_range.js).
// Texts go in as text, never HTML.
(function () {
  "use strict";
  const element = document.getElementById("map");
  const summary = document.getElementById("ambulance-summary");

  element.addEventListener("citymap:ready", function (event) {
    const map = event.detail.map;
    const control = event.detail.control;
    const lines = event.detail.lines;
    const renderer = L.canvas({ padding: 0.2 });
    const groups = {
      "Ambulance calls": L.layerGroup().addTo(map),
      "Ambulance heat": L.layerGroup().addTo(map),
      "Ambulance clusters": L.layerGroup().addTo(map),
    };
    Object.keys(groups).forEach(function (name) { control.addOverlay(groups[name], name); });

    function draw(data) {
      Object.values(groups).forEach(function (group) { group.clearLayers(); });
      const peak = Math.max(1, ...data.heat.features.map(function (f) { return f.properties.calls; }));
      data.heat.features.forEach(function (f) {
        const [lon, lat] = f.geometry.coordinates;
        const half = 0.0015;
        L.rectangle([[lat - half, lon - half], [lat + half, lon + half]], {
          stroke: false, fillColor: "#6a1b9a", fillOpacity: 0.1 + 0.5 * f.properties.calls / peak,
        }).bindTooltip(f.properties.calls + " calls").addTo(groups["Ambulance heat"]);
      });
      data.calls.features.forEach(function (f) {
        const [lon, lat] = f.geometry.coordinates;
        const p = f.properties;
        L.circleMarker([lat, lon], { renderer: renderer, radius: 3, color: "#6a1b9a", weight: 1, fillOpacity: 0.8 })
          .bindPopup(lines("Call " + p.time, p.code + " · " + p.outcome, p.cluster ? "cluster #" + p.cluster : ""))
          .addTo(groups["Ambulance calls"]);
      });
      data.clusters.features.forEach(function (f) {
        const [lon, lat] = f.geometry.coordinates;
        const p = f.properties;
        L.circleMarker([lat, lon], { radius: 10 + Math.min(14, p.calls), color: "#d50000", weight: 3, fillOpacity: 0.15 })
          .bindPopup(lines("Cluster #" + p.cluster, p.calls + " calls, " + p.from + " to " + p.to, p.acknowledged ? "acknowledged" : "new"))
          .addTo(groups["Ambulance clusters"]);
      });
      summary.textContent = data.calls.features.length.toLocaleString("en") + " calls, " +
        data.clusters.features.length + " clusters";
    }

    const failures = { load: "The calls could not be loaded", draw: "The calls could not be drawn" };
    mapRangeLayer("ambulance", "/map/ambulance.json", failures, draw);
  });
})();
