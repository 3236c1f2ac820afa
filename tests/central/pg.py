"""One throw-away PostgreSQL cluster per test process, shared by every test directory."""

from __future__ import annotations

import atexit

import pytest

from central.pg_sandbox import PgCluster, PostgresUnavailable, start_cluster

_cluster: PgCluster | None = None


def shared_cluster() -> PgCluster:
    """Start the cluster on first use; fail (never skip) when PostgreSQL is missing."""
    global _cluster
    if _cluster is None:
        try:
            _cluster = start_cluster()
        except PostgresUnavailable as exc:
            pytest.fail(f"PostgreSQL is required for the central tests: {exc}", pytrace=False)
        atexit.register(_cluster.destroy)
    return _cluster
