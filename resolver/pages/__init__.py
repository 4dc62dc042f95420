"""The built-in web pages under ``/u/``: routes, templates and their texts per language."""
