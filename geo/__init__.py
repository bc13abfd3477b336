"""Geography: coordinate systems, projections, OpenStreetMap extracts and street networks."""
