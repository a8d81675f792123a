"""Fetching raw releases into the cache: Debian packages today, user files always.

Nothing here is downloaded at model run time; ``instructprotein data fetch`` is the one
place that touches the network, and it only asks Debian's archive through apt.
"""

from instructprotein.sources.registry import PACKAGES, RESOURCES, resource_path

__all__ = ["PACKAGES", "RESOURCES", "resource_path"]
