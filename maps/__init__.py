"""Planner maps (Folium), rendered with locally served assets.

``folium_map`` assembles a page (``map_from_layers``, ``write_map``) from ``inputs`` (checks), ``basemaps``
(OpenStreetMap in WGS 84, Amap in GCJ-02), ``layers`` (the overlays), ``popup`` (the station popup), ``panels``
(summary, legend, township table and a recommendation's sites, in a drawer that folds on a phone), ``formatting``
(米/公里, local time), ``glue`` (the call of the page script ``static/yizhan/map.js``) and ``assets`` (the files in
``static``); ``style`` holds the palette shared with the printed reports and the fixed gap classes. ``run_map``
and ``recommend_map`` map a stored coverage run or recommendation.
"""
