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
 *   layerControl  the L.control.layers of the page (rebuilt collapsed on a phone)
 *   week          null, or for a run by hour of the week {group, sets: {wgs84, gcj02}, data} (maps/glue.py,
 *                 WeekGlue): the hour selector (bottom right) draws into sets the cells that are gaps of the
 *                 chosen band (bit j of data.bits) and shows the band's covered share
 *
 * On a phone (narrower than PHONE_MAX_PX) the layer list starts collapsed and the panels (#yz-drawer: summary,
 * legend, township table) stay folded until the 面板 Panels button (#yz-drawer-toggle) opens them; opening a
 * popup folds them again. Every popup is panned clear of the panels and controls that stand over the map. The
 * township table (table.yz-sortable) sorts on a click of its column headers. The scale is metric only.
 *
 * Station markers carry their index as the option yzIdx. The URL hash "#gcj02" starts on Amap, "search=<name>"
 * opens the first matching station and "band=<key>" chooses an hour band (for links and headless tests). Sets
 * window.yizhanMap = {use, go, system, markers, foldPanels, band}; band is {choose(index or key), chosen(),
 * drawn()} (the row indexes of the cells drawn) for a run by hour of the week.
 */
(function () {
  "use strict";

  var SYSTEMS = ["wgs84", "gcj02"];
  var PHONE_MAX_PX = 699;
  var CLEARANCE_PX = 8;

  function isPhone() { return window.matchMedia("(max-width: " + PHONE_MAX_PX + "px)").matches; }

  /* The boxes of the panels and controls drawn over the map (those not hidden). */
  function obstacles(map) {
    var mapBox = map.getContainer().getBoundingClientRect();
    var found = document.querySelectorAll("#yz-drawer-toggle, #yz-drawer.yz-open, .yz-panel, " +
                                          ".leaflet-control-container .leaflet-control");
    var out = [];
    Array.prototype.forEach.call(found, function (el) {
      var r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) { return; }
      if (r.right <= mapBox.left || r.left >= mapBox.right || r.bottom <= mapBox.top || r.top >= mapBox.bottom) {
        return;  // beside the map (the township table on a desktop)
      }
      out.push(r);
    });
    return {map: mapBox, boxes: out};
  }

  /* Pan the map so that popup stands clear of the panels: on a phone between the top and bottom bands of
     controls, on a wider screen between the left and right columns of panels. */
  function clearOfPanels(map, popup) {
    var o = obstacles(map), m = o.map;
    var top = 0, bottom = 0, left = 0, right = 0;
    var phone = isPhone();
    o.boxes.forEach(function (r) {
      if (phone) {
        if ((r.top + r.bottom) / 2 < (m.top + m.bottom) / 2) { top = Math.max(top, r.bottom - m.top); }
        else { bottom = Math.max(bottom, m.bottom - r.top); }
      } else if ((r.left + r.right) / 2 < (m.left + m.right) / 2) {
        left = Math.max(left, r.right - m.left);
      } else {
        right = Math.max(right, m.right - r.left);
      }
    });
    popup.options.autoPanPaddingTopLeft = L.point(left + CLEARANCE_PX, top + CLEARANCE_PX);
    popup.options.autoPanPaddingBottomRight = L.point(right + CLEARANCE_PX, bottom + CLEARANCE_PX);
    popup.update();  // pans again with these paddings
  }

  /* The drawer of panels: its button opens and folds it. */
  function drawer(map) {
    var button = document.getElementById("yz-drawer-toggle");
    var box = document.getElementById("yz-drawer");
    if (!button || !box) { return function () {}; }
    function set(open) {
      box.classList.toggle("yz-open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    L.DomEvent.on(button, "click", function (e) {
      L.DomEvent.stop(e);
      set(!box.classList.contains("yz-open"));
    });
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return function () { set(false); };
  }

  /* Sort a table.yz-sortable by the column whose header was clicked (data-v of each cell; data-type num or
     text); a second click reverses the order. */
  function sortable(table) {
    var heads = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = th.querySelector("button") || th;
      button.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        var num = th.getAttribute("data-type") === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
          var d = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, "zh-CN");
          return asc ? d : -d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      });
    });
  }

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

  /* The hour selector: a <select> of the bands (grouped by workdays and weekend) and the whole week, the chosen
     choice's covered share below it; the cells that are gaps of the chosen choice are drawn into week.sets. */
  function weekSelector(map, week) {
    var d = week.data;
    var chosen = d.week;
    var drawn = [];
    var share = null, select = null, named = null;
    function percent(x) { return x === null ? "—" : (x * 100).toFixed(1) + "%"; }
    function draw(j) {
      drawn = [];
      for (var sy in week.sets) { week.sets[sy].clearLayers(); }
      for (var k = 0; k < d.cells.length; k++) {
        if (!(d.bits[k] & (1 << j))) { continue; }
        drawn.push(d.cells[k]);
        for (var s in week.sets) {
          var ring = d[s][k], ll = [];
          for (var p = 0; p + 1 < ring.length; p += 2) { ll.push([ring[p], ring[p + 1]]); }
          if (!ll.length) { continue; }
          week.sets[s].addLayer(L.polygon(ll, {pane: d.pane, interactive: false, color: d.colour, weight: 0.8,
                                                fillColor: d.colour, fillOpacity: 0.5, className: "yz-band-gap",
                                                yzCell: d.cells[k]}));
        }
      }
    }
    function choose(which) {
      var j = typeof which === "number" ? which : -1;
      if (j < 0) { d.choices.forEach(function (c, i) { if (c.key === which) { j = i; } }); }
      if (j < 0 || j >= d.choices.length) { return false; }
      chosen = j;
      draw(j);
      if (select) { select.value = String(j); }
      if (named) { named.textContent = d.choices[j].label; }
      if (share) {
        share.textContent = "覆盖率 covered " + percent(d.choices[j].share) + " · 缺口网格 gap cells " + drawn.length;
      }
      map.getContainer().setAttribute("data-yz-band", d.choices[j].key);
      return true;
    }
    var Selector = L.Control.extend({
      options: {position: "bottomright"},
      onAdd: function () {
        var div = L.DomUtil.create("div", "yz-week leaflet-bar");
        var label = L.DomUtil.create("label", "", div);
        label.htmlFor = "yz-band";
        label.textContent = "时段 Hours";
        select = L.DomUtil.create("select", "", div);
        select.id = "yz-band";
        var groups = {};
        d.choices.forEach(function (c, i) {
          var parent = select;
          if (c.group) {
            if (!groups[c.group]) {
              groups[c.group] = L.DomUtil.create("optgroup", "", select);
              groups[c.group].label = c.group;
            }
            parent = groups[c.group];
          }
          var o = L.DomUtil.create("option", "", parent);
          o.value = String(i);
          o.textContent = c.text;
        });
        named = L.DomUtil.create("div", "yz-week-band", div);
        share = L.DomUtil.create("div", "yz-week-share", div);
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        L.DomEvent.on(select, "change", function () { choose(parseInt(select.value, 10)); });
        return div;
      }
    });
    new Selector().addTo(map);
    choose(chosen);
    return {choose: choose, chosen: function () { return d.choices[chosen].key; },
            drawn: function () { return drawn.slice(); }};
  }

  function glue(config) {
    var map = config.map, pairs = config.pairs, names = config.names, data = config.data;
    var stationSets = pairs[pairs.length - 1].sets;
    var current = "wgs84";
    var markers = {wgs84: [], gcj02: []};

    var popupWidth = Math.min(320, window.innerWidth - 60);

    L.control.scale({imperial: false, metric: true}).addTo(map);
    if (isPhone() && config.layerControl) {  // the layer list starts folded: one tap on its button opens it
      config.layerControl.remove();
      config.layerControl.options.collapsed = true;
      config.layerControl.addTo(map);
    }
    var foldPanels = drawer(map);
    map.on("popupopen", function (e) {
      if (isPhone()) { foldPanels(); }
      clearOfPanels(map, e.popup);
    });
    Array.prototype.forEach.call(document.querySelectorAll("table.yz-sortable"), sortable);
    window.addEventListener("beforeprint", function () { map.invalidateSize(); });

    function popupOf(layer) { return popupHtml(data, layer.options.yzIdx); }
    function openStation(m) {  // a free popup: works whether or not the marker is currently drawn or clustered
      L.popup({maxWidth: popupWidth}).setLatLng(m.getLatLng()).setContent(popupOf(m)).openOn(map);
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
          layer.bindPopup(popupOf, {maxWidth: popupWidth});
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

    var band = config.week ? weekSelector(map, config.week) : null;

    var hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (band && hash.get("band")) { band.choose(hash.get("band")); }
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
    window.yizhanMap = {use: use, go: go, system: function () { return current; }, markers: markers,
                        foldPanels: foldPanels, band: band};
  }

  window.yizhanGlue = glue;
})();
