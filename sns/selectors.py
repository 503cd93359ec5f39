"""sns: reads. Posts are visible to their owner only (others, staff included, get 404)."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from platform_core.models import User
from sns.models import SNSPost
from softfactory.api import NotFound

# What the API shows of a post; loading only these keeps list pages narrow.
POST_FIELDS = ("id", "platform", "content", "status", "scheduled_at", "published_at", "attempts", "last_error")
# Largest id PostgreSQL's bigint holds; a bigger one can't exist and must not reach the database.
MAX_POST_ID = 2**63 - 1


def post_list_for(*, user: User, status: str | None = None) -> QuerySet[SNSPost]:
    """The user's posts, `scheduled_at` newest first, then id ascending."""
    posts = SNSPost.objects.filter(user=user).only(*POST_FIELDS).order_by("-scheduled_at", "id")
    if status is not None:
        posts = posts.filter(status=status)
    return posts


def post_get_for(*, user: User, post_id: str | int) -> SNSPost:
    """One of the user's posts by id; 404 for anyone else's, unknown or malformed ids."""
    pk = parse_post_id(post_id)
    post = SNSPost.objects.filter(pk=pk, user=user).only(*POST_FIELDS).first() if pk is not None else None
    if post is None:
        raise NotFound("No such post.", code="post_not_found")
    return post


def parse_post_id(value: str | int) -> int | None:
    """The id as an int, or None when it can't be one (not digits, out of bigint range)."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    pk = int(text)
    return pk if 0 < pk <= MAX_POST_ID else None


def post_counts_by_status() -> dict[str, int]:
    """How many posts are in each status (zero included)."""
    counts = dict.fromkeys(SNSPost.Status.values, 0)
    for row in SNSPost.objects.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts
