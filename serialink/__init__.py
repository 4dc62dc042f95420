"""Serialink: GS1 Digital Link resolver and serialisation engine (CLI and settings)."""

__version__ = "0.1.0"
