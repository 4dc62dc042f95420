"""twin: every unit's digital twin and the stores under it.

Pure domain (no I/O): ``identity`` (GTIN + serial), ``events`` (what may be recorded),
``lifecycle`` (the state machine), ``unit`` (the record as a fold of events), ``batch``,
``ownership`` (owner ids, transfer codes, personal data), ``warranty`` (YAML rules),
``overlays`` (recall / theft over lots and ranges), ``links`` (linksets), ``scans``
(scan events and the resolver's buffer), ``codec`` (stored form).

Storage: ``store`` (the protocol and ``open_store(url)``), ``sqlite_store``,
``redis_store`` (single node and Cluster), ``coalesce`` (batched reads). See docs/store.md.
"""
