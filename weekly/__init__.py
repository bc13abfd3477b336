"""The hours of the week: demand by hour of the week, stations' opening hours as hourly masks, and which demand an
open station reaches at each hour (hour ``h = weekday * 24 + hour``, Monday 0, the area's local wall-clock time)."""
