"""The HTTP API's routes, one module per user: riders (nearest station, the registry's pages), staff (imports,
coverage runs and their reports, recommendations) and planners (the map); ``deps`` holds what they share."""
