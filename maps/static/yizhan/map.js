/* yizhan 驿站 planner map: the page script, loaded after Leaflet (and markercluster when used).
 *
 * Each map page calls yizhanGlue(config) once, after folium has created its layers:
 *   map           the L.Map
 *   pairs         [{parent, sets: {wgs84, gcj02}}]: every overlay group with one child per coordinate system;
 *                 the stations' pair is last
 *   bases         base layer name -> coordinate system ("wgs84" for OpenStreetMap, "gcj02" for Amap)
 *   tiles         coordinate system -> its base tile layer
 *   labels        coordinate system -> label shown in the legend's #yz-crs
 *   stationGroup  the stations' layer-control group
 *   names         station names (plain text, for the search box), by station index
 *   data          the stations as columns (see maps/popup.py): "popup" = [label, column] rows; a column is a list
 *                 or {codes, values}; with compact also "wgs84"/"gcj02" = flat [lat, lon, lat, lon, ...] (null when
 *                 a station has no position) and "marker" = Leaflet path options
 *   compact       true when the markers are built here (national scale) instead of by folium
 *
 * Station markers carry their index as the option yzIdx. The URL hash "#gcj02" starts on Amap and "search=<name>"
 * opens the first matching station (for links and headless tests). Sets window.yizhanMap = {use, go, system,
 * markers}.
 */
(function () {
  "use strict";

  var SYSTEMS = ["wgs84", "gcj02"];

  /* Value of station i in a column: a plain list, or dictionary-coded {codes, values}. */
  function cell(column, i) {
    return Array.isArray(column) ? column[i] : column.values[column.codes[i]];
  }

  /* The station popup of station i; labels and values arrive HTML-escaped from Python. */
  function popupHtml(data, i) {
    return '<div class="yz-popup"><table>' + data.popup.map(function (row) {
      return "<tr><th>" + row[0] + "</th><td>" + cell(data[row[1]], i) + "</td></tr>";
    }).join("") + "</table></div>";
  }

  function glue(config) {
    var map = config.map, pairs = config.pairs, names = config.names, data = config.data;
    var stationSets = pairs[pairs.length - 1].sets;
    var current = "wgs84";
    var markers = {wgs84: [], gcj02: []};

    function popupOf(layer) { return popupHtml(data, layer.options.yzIdx); }
    function openStation(m) {  // a free popup: works whether or not the marker is currently drawn or clustered
      L.popup({maxWidth: 320}).setLatLng(m.getLatLng()).setContent(popupOf(m)).openOn(map);
    }

    if (config.compact) {  // build the markers here, popups on demand
      SYSTEMS.forEach(function (sy) {
        var ll = data[sy], list = [];
        for (var i = 0; i < names.length; i++) {
          if (ll[2 * i] === null) { continue; }
          var m = L.circleMarker([ll[2 * i], ll[2 * i + 1]], Object.assign({yzIdx: i}, cell(data.marker, i)));
          list.push(m);
          markers[sy][i] = m;
        }
        var cluster = stationSets[sy];
        cluster.on("click", function (e) { if (e.layer && e.layer.options.yzIdx !== undefined) { openStation(e.layer); } });
        cluster.addLayers(list);
      });
    } else {  // folium drew the markers: find them in groups and clusters, and give each its popup
      var walk = function (layer, sy) {
        if (layer.eachLayer) { layer.eachLayer(function (l) { walk(l, sy); }); return; }
        if (layer.options && layer.options.yzIdx !== undefined) {
          markers[sy][layer.options.yzIdx] = layer;
          layer.bindPopup(popupOf, {maxWidth: 320});
        }
      };
      SYSTEMS.forEach(function (sy) { walk(stationSets[sy], sy); });
    }

    function use(sy) {  // show the overlay set of coordinate system sy
      pairs.forEach(function (p) {
        for (var other in p.sets) {
          if (other !== sy && p.parent.hasLayer(p.sets[other])) { p.parent.removeLayer(p.sets[other]); }
        }
        if (!p.parent.hasLayer(p.sets[sy])) { p.parent.addLayer(p.sets[sy]); }
      });
      if (current !== sy) { map.closePopup(); }
      current = sy;
      var el = document.getElementById("yz-crs");
      if (el) { el.textContent = config.labels[sy]; }
      map.getContainer().setAttribute("data-yz-crs", sy);
    }
    map.on("baselayerchange", function (e) { if (config.bases[e.name]) { use(config.bases[e.name]); } });
    use(current);

    function go(i) {  // zoom to station i and open its popup
      var m = markers[current][i];
      if (!m) { return; }
      if (!map.hasLayer(config.stationGroup)) { map.addLayer(config.stationGroup); }
      map.getContainer().setAttribute("data-yz-found", String(i));
      map.setView(m.getLatLng(), Math.max(map.getZoom(), 16), {animate: false});  // clusters open from zoom 15
      openStation(m);
    }
    function matches(q) {  // up to 10 stations whose name contains q
      var out = [];
      q = q.trim().toLowerCase();
      if (!q) { return out; }
      for (var i = 0; i < names.length && out.length < 10; i++) {
        if (names[i] && names[i].toLowerCase().indexOf(q) >= 0 && markers[current][i]) { out.push(i); }
      }
      return out;
    }
    var Search = L.Control.extend({
      options: {position: "topright"},
      onAdd: function () {
        var div = L.DomUtil.create("div", "yz-search leaflet-bar");
        var input = L.DomUtil.create("input", "", div);
        input.type = "search";
        input.placeholder = "搜索驿站 Search stations";
        var list = L.DomUtil.create("ul", "", div);
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        var found = [];
        var show = function () {
          found = matches(input.value);
          list.innerHTML = "";
          found.forEach(function (i) {
            var li = L.DomUtil.create("li", "", list);
            li.textContent = names[i];
            L.DomEvent.on(li, "click", function () { go(i); list.innerHTML = ""; });
          });
        };
        L.DomEvent.on(input, "input", show);
        L.DomEvent.on(input, "keydown", function (e) {
          if (e.key === "Enter" && found.length) { go(found[0]); list.innerHTML = ""; }
        });
        this.input = input;
        this.show = show;
        return div;
      }
    });
    var search = new Search().addTo(map);

    var hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (hash.has("gcj02")) {
      map.removeLayer(config.tiles.wgs84);
      map.addLayer(config.tiles.gcj02);  // fires baselayerchange through the layer control
    }
    if (hash.get("search")) {
      search.input.value = hash.get("search");
      search.show();
      var hit = matches(hash.get("search"));
      if (hit.length) { go(hit[0]); }
    }
    window.yizhanMap = {use: use, go: go, system: function () { return current; }, markers: markers};
  }

  window.yizhanGlue = glue;
})();
