"""Operating the resolver: structured logs with request ids (``logs``) and Prometheus
metrics (``metrics``, summed across Granian workers by ``metrics_shared``)."""
