/* The rider's page: the nearest open stations from the phone's position (WGS 84 lon/lat degrees), from a place
   typed (GET /places) or from a point tapped on the map, asked of GET /stations/nearest and listed as the API
   answers them, nearest first. Before any position the map shows the page's area: its streets and stations.
   Every text from data is set with textContent; links only with a scheme a page may open. */
(function () {
  "use strict";
  var ROOT = document.body.getAttribute("data-root") || "";  // the app's path prefix behind a proxy
  var K = 5;               // stations listed
  var SAFE = /^(https?|geo|amapuri|androidamap|iosamap|baidumap|bdapp):/i;
  var list = document.getElementById("list");
  var statusEl = document.getElementById("status");
  var reasonEl = document.getElementById("reason");
  var AMEN = JSON.parse(list.getAttribute("data-amenities"));
  var month = new Date().getMonth() + 1;
  var WARMTH = (month >= 11 || month <= 3) ? "heating" : "air_conditioning";  // 取暖 in winter, 空调 otherwise
  var AMENITY_CHIPS = {charging: "charging", drinking_water: "drinking_water", toilet: "toilet",
                       microwave: "microwave", warmth: WARMTH, love_fridge: "love_fridge"};
  // the navigation buttons: the feature's nav link of each key (riding, as riders go), Chinese and English names
  var NAV = [["amap_ride", "高德", "Amap"], ["baidu_ride", "百度", "Baidu"], ["geo", "其他地图", "other map app"]];
  var speeds = null;       // the answer's speeds {walk_kmh, ride_kmh}
  var on = {open_now: true};
  var pos = null;          // [lon, lat], WGS 84
  var posName = "";        // the typed place the position is, or "" for the phone's or a tapped one
  var chosen = null;       // the chosen station's id
  var features = [];
  var noStreetsAt = "";    // where the last search along the streets was refused (no street graph there)
  var asked = 0;           // the latest search, so that a slow answer does not overwrite a newer one

  var mapEl = document.getElementById("map");
  var AREA = mapEl.getAttribute("data-area") || "";  // the area shown before a position (?area= or most stations)
  var ASKED_AREA = new URLSearchParams(location.search).get("area");  // places only of it when the URL names it
  var map = L.map("map", {attributionControl: false}).setView([39.9042, 116.4074], 13);
  var streets = L.layerGroup().addTo(map);  // the area's own streets, drawn without tiles
  var overview = L.layerGroup().addTo(map); // the area's stations, drawn before a position
  var drawn = L.layerGroup().addTo(map);
  var streetsFor = "";     // the area and point the drawn streets are around

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function bilingual(tag, cls, zh, en) {
    var e = el(tag, cls, zh);
    if (en) { e.appendChild(document.createTextNode(" ")); e.appendChild(el("span", "en", en)); }
    return e;
  }
  function icon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    var use = document.createElementNS(ns, "use");
    use.setAttribute("href", "#i-" + name);
    svg.appendChild(use);
    return svg;
  }
  function say(zh, en) {
    statusEl.textContent = zh;
    if (en) { statusEl.appendChild(document.createTextNode(" ")); statusEl.appendChild(el("span", "en", en)); }
  }
  function metres(m) {
    return m < 1000 ? [Math.round(m) + " 米", Math.round(m) + " m"]
                    : [(m / 1000).toFixed(1) + " 公里", (m / 1000).toFixed(1) + " km"];
  }
  function speed(m, minutes) {  // the speed the minutes assume, km/h
    return (m / 1000 / (minutes / 60)).toFixed(1).replace(/\.0$/, "");
  }

  function query(by) {
    var p = new URLSearchParams();
    p.set("lon", pos[0].toFixed(7));
    p.set("lat", pos[1].toFixed(7));
    p.set("k", String(K));
    if (on.open_now) { p.set("open_now", "true"); }
    if (on["24h"]) { p.set("open_24h", "true"); }
    Object.keys(AMENITY_CHIPS).forEach(function (key) { if (on[key]) { p.append("amenity", AMENITY_CHIPS[key]); } });
    p.set("by", by);
    return p;
  }

  function search() {
    if (!pos) { return; }
    var mine = ++asked;
    say("正在查找…", "Searching…");
    list.setAttribute("data-state", "busy");
    var network = query("network");
    var here = pos[0].toFixed(2) + "," + pos[1].toFixed(2);  // within ~1 km: the same streets, or none
    var tryNetwork = here !== noStreetsAt ? fetch(ROOT + "/stations/nearest?" + network.toString())
                                          : Promise.resolve({ok: false});
    tryNetwork.then(function (r) {
      if (r.ok) { return r.json().then(function (body) { return {body: body, by: "network", q: network}; }); }
      noStreetsAt = here;
      var straight = query("straight");  // no street graph here, or the point is off the streets
      return fetch(ROOT + "/stations/nearest?" + straight.toString()).then(function (r2) {
        return r2.json().then(function (body) {
          if (!r2.ok) { throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)); }
          return {body: body, by: "straight", q: straight};
        });
      });
    }).then(function (got) {
      if (mine !== asked) { return; }
      features = got.body.features || [];
      speeds = got.body.speeds || null;
      list.setAttribute("data-query", got.q.toString());
      list.setAttribute("data-by", got.by);
      render(got.body, got.by);
      if (got.by === "network" && features.length) { drawStreets(features[0].properties.area, pos); }
    }).catch(function (err) {
      if (mine !== asked) { return; }
      say("查询失败，请稍后再试", "Search failed: " + err.message);
      list.setAttribute("data-state", "failed");
    });
  }

  function render(body, by) {
    list.textContent = "";
    reasonEl.textContent = "";
    reasonEl.hidden = true;
    if (features.length) {
      say((posName ? "从「" + posName + "」" : "") + (by === "network" ? "按沿街道路程排序" : "按直线距离排序（本处没有街道数据）"),
          (posName ? "from " + posName + ", " : "") +
          (by === "network" ? "ranked by distance along the streets" : "ranked by straight-line distance (no street data here)"));
    } else {
      say("没有找到驿站", "No station found");
      showReason(body);
    }
    features.forEach(function (f, i) { list.appendChild(card(f, i)); });
    if (features.length && !features.some(function (f) { return f.id === chosen; })) { chosen = features[0].id; }
    draw();
    markChosen();
    list.setAttribute("data-searches", String(asked));
    list.setAttribute("data-state", "done");
  }

  function showReason(body) {
    var r = body.reason;
    var zh = r && r.zh ? r.zh : (on.open_now ? "附近没有现在开放的驿站" : "附近没有符合条件的驿站");
    var en = r && r.en ? r.en : (on.open_now ? "no station open now nearby" : "no station matches nearby");
    reasonEl.appendChild(bilingual("h2", "", zh, en));
    if (r && r.code) { reasonEl.setAttribute("data-code", r.code); }
    [["nearest_beyond", "更远处最近的驿站", "nearest beyond the limit"],
     ["next_open", "最早开放的驿站", "the next to open"]].forEach(function (what) {
      var f = body[what[0]];
      if (f && f.properties) {
        reasonEl.appendChild(bilingual("p", "meta", what[1], what[2]));
        var c = card(f, -1);
        c.classList.add(what[0]);
        var ul = el("ul");
        ul.appendChild(c);
        reasonEl.appendChild(ul);
      }
    });
    reasonEl.hidden = false;
  }

  function card(f, i) {
    var p = f.properties;
    var li = el("li", "card");
    li.setAttribute("data-id", f.id);
    var pick = el("button", "pick");
    pick.type = "button";
    pick.appendChild(el("h2", "name", (i >= 0 ? (i + 1) + ". " : "") + p.name));
    var line = el("p", "meta");
    var along = typeof p.network_distance_m === "number";
    var d = along ? p.network_distance_m : p.distance_m;
    if (typeof d === "number") {
      var m = metres(d);
      var dist = el("span", "dist", (along ? "沿街 " : "直线 ") + m[0]);
      dist.appendChild(document.createTextNode(" "));
      dist.appendChild(el("span", "en", (along ? "along the streets " : "straight ") + m[1]));
      line.appendChild(dist);
    }
    var walk = along ? p.walk_min : p.straight_walk_min;
    var ride = along ? p.ride_min : p.straight_ride_min;
    var v = speeds || {};
    if (typeof walk === "number") {
      var wv = v.walk_kmh || (typeof d === "number" && walk > 0 ? speed(d, walk) : null);
      line.appendChild(bilingual("span", "walk", " · 步行" + (along ? "" : "至少") + " " + walk + " 分钟" + (wv ? "（按 " + wv + " 公里/时）" : ""),
                                 "walk " + (along ? "" : "at least ") + walk + " min" + (wv ? " at " + wv + " km/h" : "")));
    }
    if (typeof ride === "number") {
      var rv = v.ride_kmh || (typeof d === "number" && ride > 0 ? speed(d, ride) : null);
      line.appendChild(bilingual("span", "ride", " · 骑行" + (along ? "" : "至少") + " " + ride + " 分钟" + (rv ? "（按 " + rv + " 公里/时）" : ""),
                                 "ride " + (along ? "" : "at least ") + ride + " min" + (rv ? " at " + rv + " km/h" : "")));
    }
    pick.appendChild(line);
    var state = el("p", "meta state");
    if (p.open_now === true) { state.appendChild(bilingual("span", "badge open", "现在开放", "open now")); }
    if (p.open_now === false) { state.appendChild(bilingual("span", "badge shut", "已关闭", "closed")); }
    if (p.status_zh) { state.appendChild(bilingual("span", "status-text", p.status_zh, p.status_en)); }
    if (state.childNodes.length) { pick.appendChild(state); }
    if (p.hours_zh || p.opening_hours_text) {
      pick.appendChild(bilingual("p", "meta hours", "开放时间 " + (p.hours_zh || p.opening_hours_text), ""));
    }
    if (p.amenities && p.amenities.length) {
      var ul = el("ul", "amenities");
      p.amenities.forEach(function (a) {
        var label = AMEN[a] || [a, ""];
        var item = el("li", "amenity");
        item.appendChild(icon(a));
        item.appendChild(document.createTextNode(label[0]));
        ul.appendChild(item);
      });
      pick.appendChild(ul);
    }
    var who = [p.host_name, p.address].filter(Boolean).join(" · ");
    if (who) { pick.appendChild(el("p", "meta where", who)); }
    pick.addEventListener("click", function () { chosen = f.id; draw(); markChosen(); });
    li.appendChild(pick);

    var actions = el("div", "actions");
    var nav = p.nav || {};
    NAV.forEach(function (app) {
      var href = nav[app[0]] || nav[app[0].split("_")[0]];
      if (typeof href === "string" && SAFE.test(href)) {
        var a = bilingual("a", "btn navbtn", app[1], app[2]);
        a.insertBefore(icon("nav"), a.firstChild);
        a.setAttribute("href", href);
        a.setAttribute("data-app", app[0]);
        actions.appendChild(a);
      }
    });
    var tel = p.phone ? String(p.phone).split(/[\/;、，,]| 或 /)[0].replace(/[^0-9+\-]/g, "") : "";
    if (/\d/.test(tel)) {
      var call = el("a", "btn call", p.phone);
      call.insertBefore(icon("phone"), call.firstChild);
      call.setAttribute("href", "tel:" + tel);
      actions.appendChild(call);
    }
    var more = bilingual("a", "btn more", "详情", "details");
    more.setAttribute("href", ROOT + "/s/" + encodeURIComponent(f.id) + "?area=" + encodeURIComponent(p.area || ""));
    actions.appendChild(more);
    li.appendChild(actions);
    return li;
  }

  function markChosen() {
    Array.prototype.forEach.call(list.children, function (li) {
      li.classList.toggle("chosen", li.getAttribute("data-id") === chosen);
    });
  }

  function draw() {
    drawn.clearLayers();
    var bounds = [];
    if (pos) {
      L.circleMarker([pos[1], pos[0]], {radius: 8, color: "#fff", weight: 3, fillColor: "#1565c0", fillOpacity: 1})
        .addTo(drawn).bindTooltip(posName ? el("span", "", posName) : "我的位置 you");
      bounds.push([pos[1], pos[0]]);
    }
    features.forEach(function (f, i) {
      var c = f.geometry.coordinates;
      var mine = f.id === chosen;
      var mk = L.circleMarker([c[1], c[0]], {radius: mine ? 10 : 7, color: "#fff", weight: 2,
                                             fillColor: mine ? "#c62828" : "#ef9a9a", fillOpacity: 1}).addTo(drawn);
      mk.bindTooltip(el("span", "", (i + 1) + ". " + f.properties.name));
      mk.on("click", function () { chosen = f.id; draw(); markChosen(); });
      bounds.push([c[1], c[0]]);
      var route = f.properties.route;
      if (mine && route && route.coordinates) {
        L.polyline(route.coordinates.map(function (xy) { return [xy[1], xy[0]]; }),
                   {color: "#c62828", weight: 5, opacity: 0.8, className: "route"}).addTo(drawn);
      }
    });
    if (bounds.length) { map.fitBounds(bounds, {padding: [24, 24], maxZoom: 17}); }
  }

  function drawStreets(area, at) {  // the area's streets around at = [lon, lat]
    var key = area + "@" + at[0].toFixed(2) + "," + at[1].toFixed(2);  // again when the rider moves ~1 km
    if (!area || key === streetsFor) { return; }
    streetsFor = key;
    var p = new URLSearchParams({area: area, lon: at[0].toFixed(6), lat: at[1].toFixed(6)});
    fetch(ROOT + "/rider-streets?" + p.toString()).then(function (r) { return r.ok ? r.json() : null; }).then(function (g) {
      if (!g || streetsFor !== key) { return; }
      streets.clearLayers();
      L.polyline(g.coordinates.map(function (line) { return line.map(function (xy) { return [xy[1], xy[0]]; }); }),
                 {color: "#ffffff", weight: 3, opacity: 1, interactive: false, className: "streets"}).addTo(streets).bringToBack();
      mapEl.setAttribute("data-streets", String(g.coordinates.length));
    });
  }

  function showArea() {  // before a position: the area's extent, streets and active stations
    var b = (mapEl.getAttribute("data-bounds") || "").split(",").map(Number);
    if (!AREA || b.length !== 4) { return; }
    var fit = function () { if (!pos) { map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [8, 8], maxZoom: 16}); } };
    fit();
    map.on("resize", fit);  // a phone turned, a window resized: the whole area again until a position is known
    var c = mapEl.getAttribute("data-centre").split(",").map(Number);
    drawStreets(AREA, c);
    var p = new URLSearchParams({area: AREA, status: "active", limit: "1000"});
    fetch(ROOT + "/stations?" + p.toString()).then(function (r) { return r.ok ? r.json() : null; }).then(function (g) {
      if (!g) { return; }
      g.features.forEach(function (f) {
        var xy = f.geometry.coordinates;
        L.circleMarker([xy[1], xy[0]], {radius: 6, color: "#fff", weight: 2, fillColor: "#8e1c1c", fillOpacity: 0.9,
                                        className: "overview"}).addTo(overview).bindTooltip(el("span", "", f.properties.name));
      });
      mapEl.setAttribute("data-stations", String(g.features.length));
    });
  }

  // typing a place: the matches of GET /places, the chosen one's position searched from
  var qEl = document.getElementById("q");
  var placesEl = document.getElementById("places");
  var offered = [];
  var typing = 0;
  function findPlaces() {
    var q = qEl.value.trim();
    var mine = ++typing;
    if (!q) { placesEl.hidden = true; placesEl.textContent = ""; offered = []; return Promise.resolve(); }
    var p = new URLSearchParams({q: q});
    if (ASKED_AREA) { p.set("area", ASKED_AREA); }
    return fetch(ROOT + "/places?" + p.toString()).then(function (r) { return r.json(); }).then(function (body) {
      if (mine !== typing) { return; }
      offered = body.places || [];
      placesEl.textContent = "";
      offered.forEach(function (pl) {
        var b = el("button", "placebtn", pl.name);
        b.type = "button";
        b.appendChild(document.createTextNode(" "));
        b.appendChild(el("span", "en", pl.kind_zh + " " + pl.kind_en + (pl.detail ? " · " + pl.detail : "")));
        b.addEventListener("click", function () { choosePlace(pl); });
        var li = el("li");
        li.appendChild(b);
        placesEl.appendChild(li);
      });
      if (!offered.length) {
        placesEl.appendChild(bilingual("li", "none", "没有找到这个地点，请点地图选择位置", "no such place: tap the map"));
      }
      placesEl.hidden = false;
      placesEl.setAttribute("data-q", q);
    });
  }
  function choosePlace(pl) {
    typing++;              // an answer still on its way for what was typed before is not shown
    clearTimeout(timer);
    pos = [pl.lon, pl.lat];
    posName = pl.name;
    qEl.value = pl.name;
    placesEl.hidden = true;
    search();
  }
  var timer = 0;
  qEl.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(findPlaces, 250); });
  qEl.addEventListener("keydown", function (e) { if (e.key === "Escape") { placesEl.hidden = true; } });
  document.getElementById("place").addEventListener("submit", function (e) {
    e.preventDefault();
    clearTimeout(timer);
    findPlaces().then(function () { if (offered.length) { choosePlace(offered[0]); } });
  });

  function locate() {
    if (!navigator.geolocation) { say("无法获取位置，请输入地点或点地图选择位置", "No location: type a place or tap the map"); return; }
    say("正在获取位置…", "Finding your position…");
    navigator.geolocation.getCurrentPosition(function (g) {
      if (posName) { return; }  // a place typed meanwhile wins
      pos = [g.coords.longitude, g.coords.latitude];
      search();
    }, function () {
      if (!pos) { say("无法获取位置，请输入地点或点地图选择位置", "Location not available: type a place or tap the map where you are"); }
    }, {enableHighAccuracy: true, timeout: 10000, maximumAge: 60000});
  }

  map.on("click", function (e) { pos = [e.latlng.lng, e.latlng.lat]; posName = ""; search(); });
  Array.prototype.forEach.call(document.querySelectorAll(".chip"), function (chip) {
    var key = chip.getAttribute("data-filter");
    if (key === "warmth") { chip.setAttribute("data-amenity", WARMTH); }
    chip.addEventListener("click", function () {
      on[key] = !on[key];
      chip.setAttribute("aria-pressed", on[key] ? "true" : "false");
      search();
    });
  });
  document.getElementById("locate").addEventListener("click", function () { posName = ""; locate(); });
  showArea();
  locate();
}());
