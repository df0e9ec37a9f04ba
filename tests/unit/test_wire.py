from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from quill import wire
from quill.domain.values import Article, Profile


def test_timestamps_always_have_milliseconds_and_z() -> None:
    assert wire.timestamp(datetime(2026, 11, 21, 23, 22, 18, 303999, tzinfo=UTC)) == "2026-11-21T23:22:18.303Z"
    assert wire.timestamp(datetime(2026, 11, 21, 23, 22, 18, tzinfo=UTC)) == "2026-11-21T23:22:18.000Z"
    plus_two = timezone(timedelta(hours=2))
    assert wire.timestamp(datetime(2026, 11, 22, 1, 0, 0, 5000, tzinfo=plus_two)) == "2026-11-21T23:00:00.005Z"


def test_list_entries_leave_the_body_out() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    article = Article(1, "s", "t", "d", "b", ("x",), moment, moment, False, 0, 1, Profile("u", None, None, False))
    assert "body" in wire.article(article)["article"]
    assert "body" not in wire.article_list([article], 1)["articles"][0]
    assert wire.article_list([article], 7)["articlesCount"] == 7
