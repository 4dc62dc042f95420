"""Shared pytest configuration. Fixtures that start real servers live in their own
modules and are registered here as plugins."""

pytest_plugins = []
