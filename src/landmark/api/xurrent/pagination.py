"""Xurrent pagination headers (reference/xurrent-api.md §1.5): Link and X-Pagination-*."""

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from landmark.core.query import Page

PAGING = frozenset({"page", "search_after", "search_before"})


def pagination_headers(url: str, params: Sequence[tuple[str, str]], page: Page) -> dict[str, str]:
    """Headers for one page of the collection at `url` (absolute, without query).

    Link carries rel="first" and rel="prev" on every page but the first and rel="next" on every
    page but the last, as absolute URLs that keep the request's other parameters; there is no
    rel="last" (Xurrent dropped it). Cursor links, whichever style the request used."""
    kept = [(key, value) for key, value in params if key not in PAGING]
    links = []
    if page.current_page > 1 or page.prev_cursor:
        links.append((_link(url, kept), "first"))
    if page.prev_cursor:
        links.append((_link(url, [*kept, ("search_before", page.prev_cursor)]), "prev"))
    if page.next_cursor:
        links.append((_link(url, [*kept, ("search_after", page.next_cursor)]), "next"))
    headers = {
        "X-Pagination-Per-Page": str(page.per_page),
        "X-Pagination-Current-Page": str(page.current_page),
        "X-Pagination-Total-Pages": str(page.total_pages),
        "X-Pagination-Total-Entries": str(page.total_entries),
    }
    if links:
        headers["Link"] = ", ".join(f'<{href}>; rel="{rel}"' for href, rel in links)
    return headers


def _link(url: str, params: list[tuple[str, str]]) -> str:
    # quote (not quote_plus) and no safe characters: ",", "<", ">" and ";" inside a Link URL
    # would trip clients that split the header naively.
    query = urlencode(params, quote_via=quote, safe="")
    return f"{url}?{query}" if query else url
