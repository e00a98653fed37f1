// The Brigades page's drawing map: each click adds a point to a line (or a polygon);
// the form sends it as GeoJSON (longitude, latitude).
(function () {
  "use strict";
  const element = document.getElementById("draw-map");
  if (!element || typeof L === "undefined") return;
  const map = L.map(element, { doubleClickZoom: false }).setView(JSON.parse(element.dataset.center), 12);
  const area = document.getElementById("draw-area");
  const polygon = document.getElementById("draw-polygon");
  let points = [];
  let shape = null;
  function redraw() {
    if (shape) shape.remove();
    const closed = polygon.checked && points.length >= 3;
    shape = closed ? L.polygon(points, { color: "#2e7d32" }) : L.polyline(points, { color: "#2e7d32" });
    shape.addTo(map);
    const coordinates = points.map(function (p) { return [p[1], p[0]]; });
    if (closed) {
      area.value = JSON.stringify({ type: "Polygon", coordinates: [coordinates.concat([coordinates[0]])] });
    } else if (points.length >= 2) {
      area.value = JSON.stringify({ type: "LineString", coordinates: coordinates });
    } else {
      area.value = "";
    }
    element.dataset.points = String(points.length);
  }
  map.on("click", function (event) {
    points.push([event.latlng.lat, event.latlng.lng]);
    document.querySelector("input[name=what][value=drawn]").checked = true;
    redraw();
  });
  polygon.addEventListener("change", redraw);
  document.getElementById("draw-clear").addEventListener("click", function () { points = []; redraw(); });
  // The zones in force under the drawing, so that a street is drawn where it is even
  // without a base map.
  fetch("/map/layers.json", { credentials: "same-origin" })
    .then(function (answer) { return answer.ok ? answer.json() : null; })
    .then(function (data) {
      if (!data) return;
      const zones = L.geoJSON(data.zones, {
        interactive: false,
        style: function (f) {
          return { color: f.properties.kind === "sector" ? "#ef6c00" : "#1565c0", weight: 1, fillOpacity: 0.03 };
        },
      }).addTo(map);
      if (zones.getBounds().isValid()) map.fitBounds(zones.getBounds(), { maxZoom: 15 });
    })
    .finally(function () { element.dataset.ready = "true"; });
})();
