// The panel's Map page: draws the layers of /map/layers.json with Leaflet. Every text
// shown comes from the database (venue names are typed by their owners), so it is put
// in the page as text, never as HTML.
(function () {
  "use strict";
  const element = document.getElementById("map");
  const config = JSON.parse(element.dataset.config);
  const map = L.map(element, { zoomSnap: 0.5 });
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { attribution: config.attribution, maxZoom: 19 }).addTo(map);
  }
  map.setView(config.center, 11);

  function lines(...rows) {
    const box = document.createElement("div");
    rows.filter(Boolean).forEach(function (row, index) {
      const line = document.createElement(index === 0 ? "strong" : "div");
      line.textContent = row;
      box.appendChild(line);
    });
    return box;
  }

  const zoneStyles = {
    district: { color: "#1565c0", weight: 2, fillOpacity: 0.04 },
    sector: { color: "#ef6c00", weight: 2, dashArray: "6 4", fillOpacity: 0.04 },
    quarantine: { color: "#c62828", weight: 2, fillColor: "#c62828", fillOpacity: 0.25 },
  };

  function venueColour(p) {
    if (!p.capacity) return "#2e7d32";
    const share = p.inside / p.capacity;
    return share > 1 ? "#c62828" : share >= 0.8 ? "#ef6c00" : "#2e7d32";
  }

  function summaryLine(list, label, count, extra) {
    const item = document.createElement("li");
    item.id = "count-" + label.split(" ")[0].toLowerCase();
    item.textContent = count.toLocaleString("en") + " " + label + (extra || "");
    list.appendChild(item);
  }

  async function draw() {
    const answer = await fetch("/map/layers.json", {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const summary = document.getElementById("map-summary");
    if (!answer.ok) {
      summary.textContent = "The layers could not be loaded (" + answer.status + "). Reload the page to try again.";
      return;
    }
    const data = await answer.json();
    const overlays = {};
    const bounds = L.latLngBounds([]);

    const zones = L.geoJSON(data.zones, {
      style: function (f) { return zoneStyles[f.properties.kind] || zoneStyles.district; },
      onEachFeature: function (f, layer) {
        layer.bindTooltip(lines(f.properties.name, f.properties.kind), { sticky: true });
      },
    });
    overlays["Zones and sectors"] = zones.addTo(map);

    const checkpoints = L.geoJSON(data.checkpoints, {
      pointToLayer: function (f, at) {
        return L.circleMarker(at, { radius: 7, color: "#fff", weight: 2, fillColor: "#37474f", fillOpacity: 1 });
      },
      onEachFeature: function (f, layer) {
        layer.bindPopup(lines(f.properties.name, "Checkpoint · " + f.properties.zone, "register: " + f.properties.register));
      },
    });
    overlays["Checkpoints"] = checkpoints.addTo(map);

    const venueRenderer = L.canvas({ padding: 0.2 });
    let inside = 0;
    const venues = L.geoJSON(data.venues, {
      pointToLayer: function (f, at) {
        const p = f.properties;
        inside += p.inside;
        return L.circleMarker(at, {
          renderer: venueRenderer,
          radius: 4 + Math.min(10, Math.sqrt(p.inside)),
          color: venueColour(p), weight: 1, fillColor: venueColour(p), fillOpacity: 0.6,
        });
      },
      onEachFeature: function (f, layer) {
        const p = f.properties;
        layer.bindPopup(lines(p.name, p.address, p.inside + " inside" + (p.capacity ? " of " + p.capacity : "")));
      },
    });
    overlays["Venues (occupancy)"] = venues.addTo(map);

    const list = document.createElement("ul");
    summaryLine(list, "zones and sectors", data.zones.features.length);
    summaryLine(list, "checkpoints", data.checkpoints.features.length);
    summaryLine(list, "venues", data.venues.features.length, ", " + inside.toLocaleString("en") + " people inside now");

    if (data.violations) {
      const markers = {};
      const violations = L.geoJSON(data.violations, {
        pointToLayer: function (f, at) {
          return L.circleMarker(at, { radius: 9, color: "#fff", weight: 2, fillColor: "#c62828", fillOpacity: 0.9 });
        },
        onEachFeature: function (f, layer) {
          const p = f.properties;
          markers[p.alert] = layer;
          layer.bindTooltip(lines(p.case, p.kind), { direction: "top" });
          layer.bindPopup(lines("Case " + p.case, p.kind + " since " + p.since, "district " + p.district, "position to within about 300 m", p.acknowledged ? "acknowledged" : "not acknowledged yet"));
        },
      });
      overlays["Open violations"] = violations.addTo(map);
      summaryLine(list, "open violations", data.violations.features.length);
      const items = document.getElementById("violations-list");
      if (data.violations.features.length) items.textContent = "";
      data.violations.features.forEach(function (f) {
        const item = document.createElement("li");
        item.textContent = f.properties.case + " · " + f.properties.kind;
        item.dataset.alert = f.properties.alert;
        item.addEventListener("click", function () {
          const marker = markers[f.properties.alert];
          map.flyTo(marker.getLatLng(), 15);
          marker.openPopup();
        });
        items.appendChild(item);
      });
    }
    summary.textContent = "";
    summary.appendChild(list);

    Object.values(overlays).forEach(function (layer) {
      const b = layer.getBounds();
      if (b.isValid()) bounds.extend(b);
    });
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15 });
    const control = L.control.layers(null, overlays, { collapsed: false }).addTo(map);
    element.dataset.ready = "true";
    // Layers of other pages' scripts (map_ambulance.js) join here.
    element.dispatchEvent(new CustomEvent("citymap:ready", { detail: { map: map, control: control, lines: lines } }));
  }

  draw().catch(function (error) {
    document.getElementById("map-summary").textContent = "The map could not be drawn: " + error.message;
  });
})();
