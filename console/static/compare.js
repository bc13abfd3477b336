// The comparison map: the cells newly covered (green) and no longer covered (red) between two runs, over the
// area's boundary, without background tiles; the area's streets on request (the layer list). Data from the
// page's data-changes and data-streets URLs (GeoJSON, WGS 84 lon/lat).
(function () {
  "use strict";
  var el = document.getElementById("compare-map");
  if (!el || !window.L) { return; }
  var map = L.map(el, {preferCanvas: true, zoomSnap: 0.25, attributionControl: true});
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution("© OpenStreetMap contributors");
  L.control.scale({imperial: false}).addTo(map);
  var colours = {gained: "#1a9850", lost: "#d73027"};
  var words = {gained: "新覆盖 newly covered", lost: "不再覆盖 no longer covered"};
  var streets = L.geoJSON(null, {style: {color: "#8d99a6", weight: 1, opacity: 0.8}, interactive: false});
  var streetsAsked = false;
  var changes = L.geoJSON(null, {
    style: function (f) {
      var s = f.properties.status;
      if (s === "boundary") { return {color: "#1d2733", weight: 2, dashArray: "6 4", fill: false}; }
      return {color: colours[s], weight: 0.5, fillColor: colours[s], fillOpacity: 0.65};
    },
    onEachFeature: function (f, layer) {
      var s = f.properties.status;
      if (s === "boundary") { return; }
      var text = document.createElement("div");
      text.textContent = words[s] + " · " + f.properties.weight.toLocaleString("zh-CN") + " 单 orders";
      layer.bindPopup(text);
    }
  }).addTo(map);
  L.control.layers(null, {"变化 Changes": changes, "道路 Streets": streets}, {collapsed: window.innerWidth < 600}).addTo(map);
  map.on("overlayadd", function (e) {
    if (e.layer !== streets || streetsAsked) { return; }
    streetsAsked = true;
    fetch(el.getAttribute("data-streets"), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (g) {
        if (!g) { return; }
        streets.addData(g);
        streets.bringToBack();
        el.setAttribute("data-streets-drawn", String(g.coordinates.length));
      });
  });
  fetch(el.getAttribute("data-changes"), {credentials: "same-origin"})
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (g) {
      if (!g) { return; }
      changes.addData(g);
      var bounds = changes.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds, {padding: [8, 8]}); }
      el.setAttribute("data-drawn", String(g.features.length));
    });
}());
