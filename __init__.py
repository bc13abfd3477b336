"""yizhan (驿站): coverage, maps and nearest-station service for outdoor workers' rest stations."""

__version__ = "0.1.0"
