// The Map page's feed layers: the mobile operators' subscribers away at night per sector
// and the three lines' calls per district, for a range of days, from /map/feeds.json, as
// choropleths over the sectors and districts (darker: more); the range: map_range.js.
// Texts go in as text.
(function () {
  "use strict";
  const element = document.getElementById("map");
  const summary = document.getElementById("feeds-summary");
  const top = document.getElementById("feeds-top");
  const chosen = document.getElementById("feeds-line");

  function shade(colour, value, peak) {
    return { color: colour, weight: 1, fillColor: colour, fillOpacity: value ? 0.12 + 0.6 * value / peak : 0.02 };
  }

  element.addEventListener("citymap:ready", function (event) {
    const map = event.detail.map;
    const lines = event.detail.lines;
    // One choropleth at a time reads best (sectors and districts overlap): the calls'
    // layer is a tick away in the layers' control.
    const groups = {
      "Operators: away at night (sectors)": L.layerGroup().addTo(map),
      "Calls by district": L.layerGroup(),
    };
    Object.keys(groups).forEach(function (name) { event.detail.control.addOverlay(groups[name], name); });

    function draw(group, collection, colour, value, unit) {
      group.clearLayers();
      const peak = Math.max(1, ...collection.features.map(value));
      L.geoJSON(collection, {
        style: function (f) { return shade(colour, value(f), peak); },
        onEachFeature: function (f, shape) {
          shape.bindTooltip(lines(f.properties.name, value(f).toLocaleString("en") + " " + unit), { sticky: true });
        },
      }).addTo(group);
    }

    function most(collection, value, unit) {
      return collection.features.slice().sort(function (a, b) { return value(b) - value(a); })
        .filter(value).slice(0, 3).map(function (f) { return f.properties.name + ": " + value(f).toLocaleString("en") + " " + unit; });
    }

    function drawAll(data) {
      const line = chosen.value;
      const away = function (f) { return f.properties.away; };
      const calls = function (f) { return line ? f.properties.lines[line] || 0 : f.properties.calls; };
      const what = line ? "calls to " + line : "calls";
      draw(groups["Operators: away at night (sectors)"], data.operators, "#b71c1c", away, "subscriber-hours away");
      draw(groups["Calls by district"], data.calls, "#0d47a1", calls, what);
      const count = function (c, noun) { const n = c.features.length; return n + " " + noun + (n === 1 ? "" : "s"); };
      const sum = function (c, value) { return c.features.reduce(function (n, f) { return n + value(f); }, 0); };
      summary.textContent = data.from + " to " + data.to + ": " +
        sum(data.operators, away).toLocaleString("en") + " subscriber-hours away in " + count(data.operators, "sector") + ", " +
        sum(data.calls, calls).toLocaleString("en") + " " + what + " in " + count(data.calls, "district") +
        (data.unmapped.away || data.unmapped.calls ? " (not on the map, no shape: " + data.unmapped.away.toLocaleString("en") + " away, " + data.unmapped.calls.toLocaleString("en") + " calls)" : "");
      top.textContent = "";
      most(data.operators, away, "away").concat(most(data.calls, calls, what)).forEach(function (row) {
        const item = document.createElement("li");
        item.textContent = row;
        top.appendChild(item);
      });
    }

    const failures = { load: "The operators' and calls' layers could not be loaded", draw: "The layers could not be drawn" };
    mapRangeLayer("feeds", "/map/feeds.json", failures, drawAll);
  });
})();
