"""Which Debian packages hold which data, and where each named resource lands in the cache.

Stages ask for a resource by name (``resource_path("go-obo-2013")``) and never spell a
Debian path themselves, so a package that moves its files needs one edit here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from instructprotein.errors import SourceError
from instructprotein.paths import cache_dir


@dataclass(frozen=True)
class Package:
    """A Debian package and the parts of it we keep (paths inside the package)."""

    name: str
    keep: tuple[str, ...]
    purpose: str
    group: str = "data"  # "data" is fetched by default; "test" and "tools" on request
    licence: str = ""


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package(
            "metastudent-data",
            ("usr/share/metastudent-data/dataset_201401", "usr/share/doc/metastudent-data/copyright"),
            "Swiss-Prot 2014 sequences (BLAST v4 databases) with GO annotations and the GO graph",
            licence="GPL-2+",
        ),
        Package(
            "r-bioc-go.db",
            ("usr/lib/R/site-library/GO.db/extdata/GO.sqlite", "usr/share/doc/r-bioc-go.db/copyright"),
            "GO release 2022-07-01 as SQLite: names, definitions, synonyms, relations",
            licence="Artistic-2.0",
        ),
        Package(
            "emboss-data",
            (
                "usr/share/EMBOSS/data/OBO/go.obo",
                "usr/share/EMBOSS/data/OBO/chebi.obo",
                "usr/share/doc/emboss-data/copyright",
            ),
            "GO 2013 and ChEBI in OBO format (every GO term defined)",
            licence="GPL-2+",
        ),
        Package(
            "emboss-test",
            (
                "usr/share/EMBOSS/test/swiss/seq.dat",
                "usr/share/EMBOSS/test/swnew/trembl.dat",
                "usr/share/EMBOSS/test/data/globins.fasta",
                "usr/share/EMBOSS/test/data/noid.fa",
                "usr/share/EMBOSS/test/data/ambigprot.fasta",
                "usr/share/EMBOSS/test/data/protgap.fasta",
                "usr/share/EMBOSS/test/data/prot.m-fasta",
                "usr/share/doc/emboss-test/copyright",
            ),
            "real Swiss-Prot, TrEMBL and FASTA files, good and bad (test fixtures)",
            group="test",
            licence="GPL-2+",
        ),
        Package(
            "mmseqs2",
            ("usr/bin",),
            "MMseqs2: clustering and homology search",
            group="tools",
            licence="GPL-3+",
        ),
        Package(
            "libgzstream0",
            ("usr/lib",),
            "runtime library of mmseqs2",
            group="tools",
            licence="LGPL-2.1+",
        ),
    )
}


@dataclass(frozen=True)
class Resource:
    package: str
    path: str  # inside the package
    description: str


RESOURCES: dict[str, Resource] = {
    "swissprot-2014": Resource(
        "metastudent-data",
        "usr/share/metastudent-data/dataset_201401",
        "folder: {MFO,BPO,CCO}/goasp.fasta BLAST dbs + goasp_annot.dat, goGraph.txt, nameMapping.txt",
    ),
    "go-sqlite": Resource("r-bioc-go.db", "usr/lib/R/site-library/GO.db/extdata/GO.sqlite", "GO 2022-07-01, SQLite"),
    "go-obo-2013": Resource("emboss-data", "usr/share/EMBOSS/data/OBO/go.obo", "GO 2013-07-13, OBO 1.2"),
    "chebi-obo": Resource("emboss-data", "usr/share/EMBOSS/data/OBO/chebi.obo", "ChEBI, OBO"),
    "swiss-sample": Resource("emboss-test", "usr/share/EMBOSS/test/swiss/seq.dat", "100 Swiss-Prot entries"),
    "trembl-sample": Resource("emboss-test", "usr/share/EMBOSS/test/swnew/trembl.dat", "9 TrEMBL entries"),
    "fasta-samples": Resource("emboss-test", "usr/share/EMBOSS/test/data", "folder: real FASTA files, good and bad"),
    "mmseqs-bin": Resource("mmseqs2", "usr/bin", "folder with the mmseqs binaries"),
    "mmseqs-lib": Resource("libgzstream0", "usr/lib", "folder with libgzstream"),
}


def package_root(name: str, cache: str | Path | None = None) -> Path:
    return cache_dir(cache) / "packages" / name


def resource_path(name: str, cache: str | Path | None = None, must_exist: bool = True) -> Path:
    """Path of a named resource in the cache; tells the user how to get it when missing."""
    try:
        res = RESOURCES[name]
    except KeyError:
        raise SourceError(f"unknown resource {name!r}; known: {', '.join(sorted(RESOURCES))}") from None
    path = package_root(res.package, cache) / res.path
    if must_exist and not path.exists():
        group = PACKAGES[res.package].group
        flag = "" if group == "data" else f" --group {group}"
        raise SourceError(
            f"{name} ({res.description}) is not in the cache at {path}; run `instructprotein data fetch{flag}` first"
        )
    return path
