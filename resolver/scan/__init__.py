"""The scan path: a GS1 Digital Link request in, a 307 (or linkset, 300, 4xx) out.

``handler`` (raw ASGI) → ``ext.parse`` → ``lookup`` (what the resolver knows of the unit,
from caches in front of the store) → ``decide`` (pure: rules × role × state × request) →
``linkset`` / redirect. Nothing here imports the journeys, the /v1 API or the pages.
"""
