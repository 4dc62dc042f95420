"""The JSON API under ``/v1``: units (``units``), link data (``links``), the factory line's
batches (``batches``), what every endpoint shares (``common``) and the OpenAPI document
(``openapi``). Endpoints parse and answer HTTP; the journeys decide."""
