"""`instructprotein data`: fetch the Debian packages that hold real protein data, and list the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from instructprotein.cli.common import CacheOpt, err, out
from instructprotein.paths import cache_dir

data_app = typer.Typer(help="Fetch and inspect the raw data releases.", no_args_is_help=True)


@data_app.command("fetch")
def data_fetch(
    cache: CacheOpt = None,
    group: Annotated[list[str], typer.Option(help="Package groups: data (default), test, tools.")] = ["data"],  # noqa: B006
    package: Annotated[list[str], typer.Option(help="Also fetch this package by name.")] = [],  # noqa: B006
    deb_dir: Annotated[
        Optional[Path], typer.Option(help="Take NAME_*.deb files from this folder instead of apt-get.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Fetch again even if the cache is intact.")] = False,
    keep_debs: Annotated[bool, typer.Option(help="Keep the downloaded .deb files.")] = False,
) -> None:
    """Download the Debian packages holding real protein data and unpack what is used."""
    from instructprotein.sources.debian import fetch, packages_for

    pkgs = packages_for(group, package)
    results = fetch(pkgs, cache, deb_dir=deb_dir, force=force, keep_debs=keep_debs, say=lambda m: err.log(m))
    table = Table(title=f"data cache: {cache_dir(cache)}")
    for col in ("package", "version", ".deb MB", "sha256", "files", "MB", "status"):
        table.add_column(col, no_wrap=col in ("package", "status"))
    for rec, fetched in results:
        table.add_row(
            rec.package,
            rec.version,
            f"{rec.deb_size / 1e6:.1f}",
            rec.deb_sha256[:10] + "…",
            str(rec.kept_files),
            f"{rec.kept_bytes / 1e6:.1f}",
            "fetched" if fetched else "cached",
        )
    out.print(table)


@data_app.command("status")
def data_status(cache: CacheOpt = None) -> None:
    """What is in the cache, and whether each named resource is present."""
    from instructprotein.sources.debian import load_manifest
    from instructprotein.sources.registry import RESOURCES, resource_path

    root = cache_dir(cache)
    manifest = load_manifest(root)
    table = Table(title=f"resources in {root}")
    for col in ("resource", "package", "version", "present", "description"):
        table.add_column(col)
    for name, res in RESOURCES.items():
        present = resource_path(name, cache, must_exist=False).exists()
        rec = manifest.get(res.package)
        table.add_row(name, res.package, rec.version if rec else "-", "yes" if present else "no", res.description)
    out.print(table)
