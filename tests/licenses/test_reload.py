"""A config reload that would go over the license's backend limit is a change: refused."""

import json

import pytest

from backends.models import Backend
from eldric_cloud.cli import build_parser, parse_options
from eldric_cloud.reload import ConfigReloader


def entries(*names: str) -> dict:
    return {"backends": [{"name": n, "url": f"http://127.0.0.1:9/{n}"} for n in names]}


@pytest.mark.django_db
@pytest.mark.license_tier("free")
def test_a_reload_past_the_free_limit_keeps_the_running_config(tmp_path):
    path = tmp_path / "eldric.json"
    path.write_text(json.dumps(entries("one", "two")))
    argv = ["--config", str(path)]
    reloader = ConfigReloader(parse_options(argv), build_parser().parse_args(argv), discover=False)
    assert reloader.reload().ok

    path.write_text(json.dumps(entries("one", "two", "three")))
    result = reloader.reload()

    assert not result.ok
    assert sorted(Backend.objects.values_list("name", flat=True)) == ["one", "two"]
