"""Fetch Debian packages with apt, unpack the parts we use into the cache, and record checksums.

Why Debian: it is the one archive these machines (and many clusters) reach that ships real
protein data (Swiss-Prot 2014 with GO, GO releases). ``apt-get download`` needs no root;
unpacking uses ``dpkg-deb -x`` where present, else a pure-Python reader of the ``.deb``
(an ``ar`` archive holding ``data.tar.*``), so a user on any system can bring ``.deb``
files by hand with ``--deb-dir``.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from instructprotein.atomic import atomic_dir, write_text
from instructprotein.checksums import file_sha256
from instructprotein.errors import SourceError
from instructprotein.paths import cache_dir
from instructprotein.sources.registry import PACKAGES, Package, package_root

MANIFEST = "manifest.json"


@dataclass
class FetchRecord:
    """What the manifest keeps of one fetched package, to check later runs against."""

    package: str
    version: str
    deb: str
    deb_size: int
    deb_sha256: str
    kept_files: int
    kept_bytes: int
    fetched_at: str


def load_manifest(cache: Path) -> dict[str, FetchRecord]:
    path = cache / MANIFEST
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: FetchRecord(**rec) for name, rec in raw.get("packages", {}).items()}
    except (ValueError, TypeError) as exc:
        raise SourceError(f"{path}: unreadable manifest ({exc}); delete it and fetch again") from exc


def save_manifest(cache: Path, records: dict[str, FetchRecord]) -> None:
    payload = {"packages": {name: asdict(rec) for name, rec in sorted(records.items())}}
    write_text(cache / MANIFEST, json.dumps(payload, indent=2) + "\n")


def tree_size(root: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``root``: the cheap check of a cached unpack."""
    files = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            if p.is_file():
                files += 1
                total += p.stat().st_size
    return files, total


def is_cached(pkg: Package, cache: Path, record: FetchRecord | None) -> bool:
    """True when the unpacked files are all there with the recorded count and size."""
    if record is None:
        return False
    root = package_root(pkg.name, cache)
    if not all((root / keep).exists() for keep in pkg.keep):
        return False
    return tree_size(root) == (record.kept_files, record.kept_bytes)


def apt_download(name: str, dest: Path) -> Path:
    """``apt-get download NAME`` into ``dest``; run ``apt-get update`` once if lists are empty."""
    if shutil.which("apt-get") is None:
        raise SourceError(
            f"apt-get is not available to fetch the Debian package {name!r}. Download "
            f"{name}_*.deb by hand from any Debian mirror (suite bookworm or newer) and "
            f"pass its folder with --deb-dir"
        )

    def attempt() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["apt-get", "download", "-q", name], cwd=dest, capture_output=True, text=True)

    result = attempt()
    missing = "Unable to locate package" in result.stderr or "has no installation candidate" in result.stderr
    if result.returncode != 0 and missing and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
        result = attempt()
    if result.returncode != 0:
        hint = (
            "apt's package lists look empty: run `apt-get update` as root first"
            if "Unable to locate package" in result.stderr
            else "check the network (Debian's archive must be reachable)"
        )
        raise SourceError(
            f"`apt-get download {name}` failed ({hint}; or download {name}_*.deb by hand "
            f"and pass its folder with --deb-dir):\n{result.stderr.strip()}"
        )
    debs = sorted(dest.glob(f"{name}_*.deb"))
    if not debs:
        raise SourceError(f"`apt-get download {name}` reported success but left no .deb in {dest}")
    return debs[-1]


def _ar_members(deb: Path) -> Iterable[tuple[str, bytes]]:
    """Members of an ``ar`` archive (the container of a .deb)."""
    with open(deb, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            raise SourceError(f"{deb}: not a Debian package (no ar magic)")
        while header := fh.read(60):
            if len(header) < 60:
                raise SourceError(f"{deb}: truncated ar header")
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            data = fh.read(size)
            if len(data) < size:
                raise SourceError(f"{deb}: truncated member {name}")
            if size % 2:
                fh.read(1)
            yield name, data


def extract_deb(deb: Path, dest: Path) -> None:
    """Unpack the file system tree of ``deb`` into ``dest``."""
    if shutil.which("dpkg-deb"):
        result = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
        if result.returncode != 0:
            raise SourceError(f"{deb}: dpkg-deb -x failed: {result.stderr.strip()}")
        return
    for name, data in _ar_members(deb):
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            try:
                import zstandard  # type: ignore[import-not-found]
            except ImportError as exc:
                raise SourceError(f"{deb}: data is zstd-compressed; install dpkg or `pip install zstandard`") from exc
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        elif name.endswith(".xz"):
            data = lzma.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        return
    raise SourceError(f"{deb}: no data.tar member")


def version_of(deb: Path) -> str:
    parts = deb.name.split("_")
    return parts[1] if len(parts) >= 3 else "unknown"


def fetch_package(
    pkg: Package,
    cache: Path,
    deb_dir: Path | None = None,
    keep_debs: bool = False,
    say: Callable[[str], None] = lambda _msg: None,
) -> FetchRecord:
    """Download (or take from ``deb_dir``), verify, unpack and keep what the registry names."""
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    deb = None
    if deb_dir is not None:
        found = sorted(Path(deb_dir).glob(f"{pkg.name}_*.deb"))
        deb = found[-1] if found else None
    if deb is None:
        say(f"downloading {pkg.name} with apt-get")
        deb = apt_download(pkg.name, downloads)
    say(f"checksumming {deb.name}")
    record_sha = file_sha256(deb)
    size = deb.stat().st_size
    say(f"unpacking {deb.name}")
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".unpack-{pkg.name}-") as tmp:
        extract_deb(deb, Path(tmp))
        with atomic_dir(package_root(pkg.name, cache)) as out:
            for keep in pkg.keep:
                src = Path(tmp) / keep
                if not src.exists():
                    raise SourceError(f"{deb}: expected {keep} inside the package; has it changed layout?")
                dst = out / keep
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))
    files, total = tree_size(package_root(pkg.name, cache))
    if not keep_debs and deb.parent == downloads:
        deb.unlink()
    return FetchRecord(
        package=pkg.name,
        version=version_of(deb),
        deb=deb.name,
        deb_size=size,
        deb_sha256=record_sha,
        kept_files=files,
        kept_bytes=total,
        fetched_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def packages_for(groups: Iterable[str], names: Iterable[str] = ()) -> list[Package]:
    chosen = [p for p in PACKAGES.values() if p.group in set(groups)]
    for name in names:
        if name not in PACKAGES:
            raise SourceError(f"unknown package {name!r}; known: {', '.join(PACKAGES)}")
        if PACKAGES[name] not in chosen:
            chosen.append(PACKAGES[name])
    return chosen


def fetch(
    packages: list[Package],
    cache: str | Path | None = None,
    deb_dir: Path | None = None,
    force: bool = False,
    keep_debs: bool = False,
    say: Callable[[str], None] = lambda _msg: None,
) -> list[tuple[FetchRecord, bool]]:
    """Fetch each package unless the cache already holds it intact; returns (record, fetched?).

    Idempotent: a second run only compares file counts and sizes with the manifest, which
    takes seconds; ``verify`` re-hashes on request.
    """
    root = cache_dir(cache)
    root.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(root)
    results = []
    for pkg in packages:
        record = manifest.get(pkg.name)
        if not force and is_cached(pkg, root, record):
            assert record is not None
            results.append((record, False))
            continue
        record = fetch_package(pkg, root, deb_dir=deb_dir, keep_debs=keep_debs, say=say)
        manifest[pkg.name] = record
        save_manifest(root, manifest)
        results.append((record, True))
    return results
