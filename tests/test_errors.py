"""The CLI's error contract: the project's own input errors are one line and exit 1; any other
exception is a bug and keeps its traceback."""

from __future__ import annotations

import pytest

import instructprotein.cli as cli
from instructprotein.errors import NotFoundError
from instructprotein.sources.packaged import packaged_benchmark


def _main_raising(monkeypatch, exc: BaseException) -> None:
    def app() -> None:
        raise exc

    monkeypatch.setattr(cli, "app", app)
    cli.main()


def test_a_name_not_found_is_one_line(monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        _main_raising(monkeypatch, NotFoundError("protein P99999 is not in the knowledge graph"))
    assert stop.value.code == 1
    assert "error: protein P99999 is not in the knowledge graph" in capsys.readouterr().err


def test_a_bare_key_error_is_a_bug_and_keeps_its_traceback(monkeypatch):
    with pytest.raises(KeyError, match="internal"):
        _main_raising(monkeypatch, KeyError("internal"))


def test_not_found_is_still_a_key_error_without_quotes():
    with pytest.raises(KeyError) as err:
        packaged_benchmark("no_such_set")
    assert isinstance(err.value, NotFoundError) and str(err.value).startswith("no packaged benchmark 'no_such_set'")


def test_unreadable_go_sqlite_is_an_error_not_an_empty_name_table(monkeypatch, tmp_path):
    """A GO.sqlite that is there but broken used to read as 'no names', silently."""
    import instructprotein.evaluate.data as data
    import instructprotein.sources.registry as registry
    from instructprotein.errors import InputError

    broken = tmp_path / "GO.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    monkeypatch.setattr(registry, "resource_path", lambda name, cache=None, must_exist=True: broken)
    monkeypatch.setattr(data, "_GO_SQLITE", None)
    with pytest.raises(InputError, match="GO.sqlite cannot be read") as err:
        data.go_sqlite_names()
    assert str(broken) in str(err.value)
    monkeypatch.setattr(registry, "resource_path", lambda name, cache=None, must_exist=True: tmp_path / "absent")
    monkeypatch.setattr(data, "_GO_SQLITE", None)
    assert data.go_sqlite_names() == {}  # not in the cache: empty, and the report counts the unnamed terms
