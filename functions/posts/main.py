"""The ``posts`` function: articles, the feed, favorites, comments and tags."""

from __future__ import annotations

import functools

from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill import wire
from quill.domain import article_input, articles, comments
from quill.function import Call, Endpoint, Function
from quill.http import empty, json, page, query_text, raw_json, read_wrapped
from quill.reads import articles as reads


def _article_query(request: Request) -> article_input.ArticleQuery:
    limit, offset = page(request)
    return article_input.ArticleQuery(
        tag=query_text(request, "tag"),
        author=query_text(request, "author"),
        favorited=query_text(request, "favorited"),
        q=query_text(request, "q"),
        limit=limit,
        offset=offset,
    )


async def list_articles(call: Call) -> Response:
    parse = functools.partial(_article_query, call.request)
    return raw_json(await reads.article_list(call.request.scope["query_string"], parse, call.viewer_id))


async def feed(call: Call) -> Response:
    limit, offset = page(call.request)
    return raw_json(await reads.feed(call.user_id, limit, offset))


async def create_article(call: Call) -> Response:
    new = article_input.parse_new(await read_wrapped(call.request, "article"))
    return json(wire.article(await articles.create(call.user_id, new)), 201)


async def get_article(call: Call) -> Response:
    return raw_json(await reads.article(call.param("slug"), call.viewer_id))


async def update_article(call: Call) -> Response:
    changes = await articles.read_changes(call.param("slug"), call.user_id, read_wrapped(call.request, "article"))
    return json(wire.article(await articles.update(call.param("slug"), call.user_id, changes)))


async def delete_article(call: Call) -> Response:
    await articles.delete(call.param("slug"), call.user_id)
    return empty()


async def favorite(call: Call) -> Response:
    return json(wire.article(await articles.favorite(call.param("slug"), call.user_id)))


async def unfavorite(call: Call) -> Response:
    return json(wire.article(await articles.unfavorite(call.param("slug"), call.user_id)))


async def list_comments(call: Call) -> Response:
    return json(wire.comments(await comments.list_for(call.param("slug"), call.viewer_id)))


async def add_comment(call: Call) -> Response:
    await reads.find_article(call.param("slug"), None)  # 404 before 422
    body = comments.parse_new(await read_wrapped(call.request, "comment"))
    return json(wire.comment(await comments.add(call.param("slug"), call.user_id, body)), 201)


async def delete_comment(call: Call) -> Response:
    comment_id = comments.parse_id(call.param("id"))
    await comments.delete(call.param("slug"), comment_id, call.user_id)
    return empty()


async def list_tags(call: Call) -> Response:
    return json({"tags": await articles.tags()})


FUNCTION = Function(
    "posts",
    [
        Endpoint("GET", "/api/articles", list_articles),
        Endpoint("POST", "/api/articles", create_article, auth="required", write=True),
        Endpoint("GET", "/api/articles/feed", feed, auth="required"),
        Endpoint("GET", "/api/articles/{slug}", get_article),
        Endpoint("PUT", "/api/articles/{slug}", update_article, auth="required", write=True),
        Endpoint("DELETE", "/api/articles/{slug}", delete_article, auth="required", write=True),
        Endpoint("POST", "/api/articles/{slug}/favorite", favorite, auth="required", write=True),
        Endpoint("DELETE", "/api/articles/{slug}/favorite", unfavorite, auth="required", write=True),
        Endpoint("GET", "/api/articles/{slug}/comments", list_comments),
        Endpoint("POST", "/api/articles/{slug}/comments", add_comment, auth="required", write=True),
        Endpoint("DELETE", "/api/articles/{slug}/comments/{id}", delete_comment, auth="required", write=True),
        Endpoint("GET", "/api/tags", list_tags, auth="none"),
    ],
)


@http
async def posts(request: Request) -> Response:
    return await FUNCTION(request)
