"""Who is asking: signed scoped tokens (``tokens``), who may issue which (``grants``), the
revocation list every host sees (``revocation``) and shared rate limits (``ratelimit``)."""
