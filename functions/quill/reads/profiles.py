"""The cached read of a profile: its viewer-independent view (``profile:<username>``) in
Redis and memory; whether the viewer follows it comes from the viewer's marks (kept in
memory by ``reads.articles`` and dropped by the follow that changes them, on every
replica), so a follow shows at once.
"""

from __future__ import annotations

from quill.domain import profiles
from quill.domain.values import Profile
from quill.reads import keys, store

__all__ = ["profile"]


async def profile(username: str, viewer_id: int | None) -> Profile:
    """The profile as ``viewer_id`` reads it, or 404."""
    store.start()
    base = await store.through(keys.profile_key(username), profiles.base, None, username)
    if viewer_id is None or viewer_id == base["id"]:
        return Profile(base["username"], base["bio"], base["image"], False)
    # Imported here: the list and article reads it lives beside (five modules, ~4 ms by
    # ``python -X importtime``) are not needed by an anonymous first request.
    from quill.reads import articles as article_reads

    following = await article_reads.follows(viewer_id, base["username"])
    if following is None:  # too many marks to keep in memory
        following = await profiles.is_following(viewer_id, base["id"])
    return Profile(base["username"], base["bio"], base["image"], following)
