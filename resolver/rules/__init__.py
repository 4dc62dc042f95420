"""The routing rules: YAML with positions (``yaml_source``), validated and compiled once
(``compiler``), GS1 link types (``linktypes``), and the compiled object a worker serves and
swaps atomically on reload (``holder``)."""
