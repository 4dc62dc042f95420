"""What the brand learns from its scans: Parquet export, DuckDB reports, SVG charts and
clone detection. Used by the API (/v1/analytics), the page (/u/analytics), the CLI
(``serialink analytics``) and, for clone detection only, the worker's services.
"""
