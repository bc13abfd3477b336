"""Planner maps (Folium), rendered with locally served assets."""
