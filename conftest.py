"""Root pytest configuration for tests/ and benchmarks/.

Fixtures that start real servers (redis-server, Redis Cluster, Granian) live in
their own modules under tests/ and are registered here as plugins.
"""

pytest_plugins: list[str] = ["tests.conformance", "tests.redis_fixtures", "tests.resolver_fixtures", "tests.fault_fixtures"]


def pytest_configure(config: object) -> None:
    """Refuse to test stale compiled code: a compiled hot module older than its source would
    run the old code under the new file's name (ext/hot_modules.py)."""
    import pytest

    from ext.hot_modules import stale

    if stale_modules := stale():
        raise pytest.UsageError(f"compiled copies older than their source: {', '.join(stale_modules)}; "
                                "rebuild with `python setup.py build_ext --inplace` (or `pip install -e .`)")
