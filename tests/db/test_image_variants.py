"""Each store's image variant: named by its packages and recipe, kept apart from the others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kvctl.control import image
from kvctl.control.image import ImageError, _variant, base_tag, ensure_node_image, node_tag
from kvctl.db import get_db


def test_kvctl_keeps_its_base_and_each_store_gets_a_variant_of_its_own():
    etcd, redis = get_db("etcd").packages, get_db("redis").packages
    assert base_tag() == base_tag(get_db("kvctl").packages)
    assert base_tag(etcd) == base_tag(etcd)
    assert len({base_tag(), base_tag(etcd), base_tag(redis)}) == 3
    assert base_tag(etcd).startswith(f"{base_tag()}-")


def test_a_changed_recipe_names_a_new_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    packages = get_db("nats").packages
    before = base_tag(packages)
    recipe = tmp_path / "recipe"
    shutil.copytree(image.recipe_dir(), recipe)
    monkeypatch.setattr(image, "recipe_dir", lambda: recipe)
    assert base_tag(packages) == before
    with (recipe / "base.sh").open("a") as script:
        script.write("# changed\n")
    assert base_tag(packages) != before


@pytest.mark.parametrize("db", ["kvctl", "etcd", "redis", "nats"])
def test_a_node_tag_names_its_store(db: str):
    tag = node_tag(db, "0123456789abcdef")
    assert _variant(tag) == db
    assert tag.endswith("0123456789ab")


def test_kvctl_node_tags_are_as_they_were():
    assert node_tag("kvctl", "0123456789abcdef") == "kvctl-node:0123456789ab"


def test_an_unknown_store_is_a_clear_image_error():
    with pytest.raises(ImageError, match="unknown store 'mongo'"):
        ensure_node_image(None, db="mongo")  # type: ignore[arg-type]
