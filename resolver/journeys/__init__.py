"""What people do with one unit — read it, register it, transfer it, service it, recall it —
shared by the /v1 API and the built-in pages so both accept and refuse the same things.
No HTTP here: errors are domain errors, mapped to problem+json or a page at the edge."""
