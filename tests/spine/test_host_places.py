"""Messages name this host's folders by their roles: as given or resolved, the innermost first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.host_places import hide_places, host_places


def test_a_place_is_named_by_its_role_as_given_and_resolved_the_innermost_first(tmp_path: Path):
    (tmp_path / "srv" / "data" / "work").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "srv")
    data = tmp_path / "link" / "data"
    message = (f"copying {tmp_path}/srv/data/work/run-1/x to {data}/repos/y failed; "
               f"{data}2/z is another folder")

    shown = hide_places(message, {"<data_dir>": data, "<workspace>": data / "work"})

    assert shown == (f"copying <workspace>/run-1/x to <data_dir>/repos/y failed; "
                     f"{data}2/z is another folder")


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests run in no virtualenv")
def test_a_workers_places_are_its_data_dir_caches_workspace_and_virtualenv(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    message = (f"{sys.prefix}/bin/python: cannot read {tmp_path}/data/work/run-1, "
               f"{tmp_path}/data/repos/a.git, {tmp_path}/data/reference-cache/b or "
               f"{tmp_path}/data/broker")

    assert hide_places(message, host_places(settings)) == (
        "<virtualenv>/bin/python: cannot read <workspace>/run-1, <repository cache>/a.git, "
        "<reference cache>/b or <data_dir>/broker")
