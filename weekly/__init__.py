"""The hours of the week: demand by hour of the week, stations' opening hours as hourly masks, and which demand an
open station reaches at each hour (hour ``h = weekday * 24 + hour``, Monday 0, the area's local wall-clock time).

- ``week``: ``HOURS``, hour of the week of instants, labels (周一 08时 / Mon 08:00), the night (22:00–06:00), the
  map's hour bands, the weeks a set of orders spans.
- ``profile``: the default delivery profile of the week, a planner's profile from a file, the demand matrix
  (locations x 168).
- ``availability``: stations' opening by hour from their ``opening_hours`` rules (a reference week without
  holidays, or a calendar week as it is).
- ``masks``: hour masks packed as 21 bytes; each location's OR over the open masks of the stations within reach.
- ``figures``: covered demand by hour, uncovered demand-hours, the worst hours, night gaps, figures per unit.
"""
