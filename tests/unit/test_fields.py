from __future__ import annotations

import pytest

from quill.domain.fields import UNSET, Fields
from quill.domain.slugs import slugify
from quill.errors import ValidationError


def test_all_problems_are_reported_together() -> None:
    fields = Fields({"title": "", "body": 3})
    fields.required("title", 10)
    fields.required("body", 10)
    fields.required("description", 10)
    with pytest.raises(ValidationError) as raised:
        fields.done()
    assert raised.value.errors == {
        "title": ["can't be blank"],
        "body": ["must be a string"],
        "description": ["can't be blank"],
    }


def test_nullable_maps_empty_to_none_and_absent_to_unset() -> None:
    fields = Fields({"bio": "", "image": None})
    assert fields.nullable("bio", 10) is None
    assert fields.nullable("image", 10) is None
    assert fields.nullable("other", 10) is UNSET


def test_tags_are_sorted_by_code_point_and_deduplicated() -> None:
    assert Fields({"tagList": ["training", "dragons", "training"]}).tags("tagList") == ("dragons", "training")
    assert Fields({"tagList": ["b", "B", " a "]}).tags("tagList") == ("B", "a", "b")
    assert Fields({}).tags("tagList") is UNSET


@pytest.mark.parametrize("value", [None, "x", [""], [1], ["ok", "   "], ["x" * 65], ["a\x07b"]])
def test_bad_tag_lists_are_errors(value: object) -> None:
    fields = Fields({"tagList": value})
    fields.tags("tagList")
    assert "tagList" in fields.errors


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("How to train your dragon", "how-to-train-your-dragon"),
        ("  Spaces   and---dashes  ", "spaces-and-dashes"),
        ("snake_case_title", "snake-case-title"),
        ("Ärger über Öl", "ärger-über-öl"),
        ("…", "article"),
        ("x" * 200, "x" * 80),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug
