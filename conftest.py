"""Root pytest configuration for tests/ and benchmarks/.

Fixtures that start real servers (redis-server, Redis Cluster, Granian) live in
their own modules under tests/ and are registered here as plugins.
"""

pytest_plugins: list[str] = ["tests.conformance", "tests.redis_fixtures", "tests.resolver_fixtures", "tests.fault_fixtures"]
