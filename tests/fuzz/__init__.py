"""Coverage-guided fuzz targets (atheris) for the parsers that read untrusted input."""
