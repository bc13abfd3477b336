"""Capacity: a station's seats against the demand that can reach it (two-step floating catchment area).

``fca.py``: 2SFCA and enhanced 2SFCA (stepwise or gaussian distance decay) on sparse demand–station pairs, equal to
PySAL ``access`` on the same inputs; ``loads.py``: the same at every hour of the week with opening hours, each
station's peak hour and load per seat, crowded stations, accessibility at the area's peak hour.
"""
