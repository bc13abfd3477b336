"""Coverage analysis: which demand lies within reach of a station, and where the gaps are."""
