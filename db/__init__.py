"""Database: the embedded PostGIS cluster, engine, models and migrations."""
