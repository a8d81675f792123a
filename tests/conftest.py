"""Shared fixtures: real data files from the Debian packages, fetched by the project's own code.

Tests run on real releases (Swiss-Prot entries, GO OBO, GO.sqlite, the metastudent
Swiss-Prot 2014 set). ``.ci/run`` fetches them before pytest; run
``instructprotein data fetch --group test`` once locally, or point INSTRUCTPROTEIN_CACHE
at a cache that has them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from instructprotein.sources.registry import resource_path


@pytest.fixture(scope="session")
def resource():
    """``resource("go-obo-2013")`` -> Path of a named resource in the cache."""

    def get(name: str) -> Path:
        return resource_path(name)

    return get
