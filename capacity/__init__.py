"""Capacity: a station's seats against the demand that can reach it (two-step floating catchment area)."""
