"""Fetching: a real .deb built here goes through download-free fetch, checksums and the cache check."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from instructprotein.errors import SourceError
from instructprotein.sources import debian
from instructprotein.sources.registry import Package, package_root, resource_path

PKG = Package("ip-fixture", ("usr/share/ip-fixture/data.txt",), "test package")


def make_deb(folder: Path, text: str = "hello protein\n") -> Path:
    root = folder / "build"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: ip-fixture\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: fixture\n"
    )
    (root / "usr/share/ip-fixture").mkdir(parents=True)
    (root / "usr/share/ip-fixture/data.txt").write_text(text)
    (root / "usr/share/ip-fixture/unused.txt").write_text("not kept\n")
    deb = folder / "ip-fixture_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zxz", str(root), str(deb)], check=True, capture_output=True)
    return deb


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb builds the fixture package")


@needs_dpkg
def test_fetch_from_deb_dir_records_checksum_and_keeps_only_named_files(tmp_path):
    debs = tmp_path / "debs"
    debs.mkdir()
    deb = make_deb(debs)
    cache = tmp_path / "cache"
    [(record, fetched)] = debian.fetch([PKG], cache, deb_dir=debs)
    assert fetched
    assert record.version == "1.0-1"
    assert record.deb_sha256 == hashlib.sha256(deb.read_bytes()).hexdigest()
    assert record.deb_size == deb.stat().st_size
    root = package_root("ip-fixture", cache)
    assert (root / "usr/share/ip-fixture/data.txt").read_text() == "hello protein\n"
    assert not (root / "usr/share/ip-fixture/unused.txt").exists()
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["packages"]["ip-fixture"]["kept_files"] == 1

    # second run: checked against the manifest, not fetched again
    [(_, fetched_again)] = debian.fetch([PKG], cache, deb_dir=debs)
    assert not fetched_again

    # a damaged cache is noticed and repaired
    (root / "usr/share/ip-fixture/data.txt").write_text("tampered, longer than before\n")
    [(_, refetched)] = debian.fetch([PKG], cache, deb_dir=debs)
    assert refetched
    assert (root / "usr/share/ip-fixture/data.txt").read_text() == "hello protein\n"


@needs_dpkg
def test_pure_python_unpack_matches_dpkg(tmp_path, monkeypatch):
    deb = make_deb(tmp_path)
    real_which = shutil.which
    monkeypatch.setattr(debian.shutil, "which", lambda name: None if name == "dpkg-deb" else real_which(name))
    out = tmp_path / "out"
    out.mkdir()
    debian.extract_deb(deb, out)
    assert (out / "usr/share/ip-fixture/data.txt").read_text() == "hello protein\n"


def test_without_apt_get_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(SourceError, match=r"--deb-dir"):
        debian.fetch([PKG], tmp_path / "cache")


def test_not_a_deb_is_refused(tmp_path, monkeypatch):
    bogus = tmp_path / "ip-fixture_1.0_all.deb"
    bogus.write_bytes(b"this is not an ar archive")
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(SourceError, match="not a Debian package"):
        debian.extract_deb(bogus, tmp_path)


def test_missing_resource_names_the_fetch_command(tmp_path):
    with pytest.raises(SourceError, match="instructprotein data fetch --group test"):
        resource_path("swiss-sample", cache=tmp_path)
    with pytest.raises(SourceError, match="unknown resource"):
        resource_path("nope", cache=tmp_path)
