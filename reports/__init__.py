"""Report writing: the run report as CSV, XLSX, GeoJSON, GeoPackage, HTML and PDF."""
