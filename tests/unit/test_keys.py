"""The names of cached values that the read path builds on every request are the ones
``quill.cache.key`` spells: a write drops what a read keeps only if both agree."""

from __future__ import annotations

import pytest

from quill.cache import key
from quill.reads import keys
from quill.settings import Settings, use_settings


@pytest.mark.parametrize("prefix", ["quill:", "", "tenant-7:"])
def test_read_path_keys_match_the_namespaced_form(prefix: str) -> None:
    with use_settings(Settings(redis_prefix=prefix)):
        assert keys.session_key("s1") == key("session", "s1")
        assert keys.lists_prefix() == key("list", "")
        assert keys.viewer_key(42) == key("list", "viewer:42")
        assert keys.viewer_page_key(42, b"limit=20") == key("list", "viewer:42?limit=20")
        assert keys.list_asked_key(b"tag=a") == key("list", "?tag=a")
        assert keys.viewer_page_key(42, b"x").startswith(keys.lists_prefix())
