"""Requests a minute per principal (`FIELDLINE_RATE_LIMIT_API`), counted in Redis so that every
web worker shares one count: the API token's or user's name when the request carries one, else
the client's address. Over the limit: 429 problem+json with Retry-After.

The `limits` library keeps the fixed-window counters; a Redis that is away lets requests
through (logged), since refusing every request would be worse than counting none.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response, current_app, request
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from fieldline.server.auth.policy import current_principal
from fieldline.server.errors import AppError, problem
from fieldline.settings import Settings

log = logging.getLogger(__name__)
# Load balancers' probes and the page's own files are never counted.
UNCOUNTED = ("/healthz", "/readyz", "/static/", "/map/static/", "/crew/static/")


class TooManyRequests(AppError):
    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        storage = storage_from_string(
            settings.redis_url,
            key_prefix=f"{settings.redis_prefix}:ratelimit",
            socket_timeout=1,
        )
        self.limiter = FixedWindowRateLimiter(storage)
        self.item = RateLimitItemPerMinute(settings.rate_limit_api)

    def hit(self, key: str) -> float | None:
        """Counts a request; the seconds to wait when over the limit, else None."""
        try:
            if self.limiter.hit(self.item, "api", key):
                return None
            reset = self.limiter.get_window_stats(self.item, "api", key).reset_time
        except Exception as exc:  # Redis away or refusing: count nothing rather than refuse all
            log.warning("rate limit not counted: %s", exc)
            return None
        return max(1.0, reset - time.time())


def client_key() -> str:
    """Whom the request is counted against: its principal when it names one."""
    try:
        principal = current_principal()
    except AppError:  # bad credentials: the view answers 401; count the address meanwhile
        return f"addr:{request.remote_addr}"
    if principal.via != "anonymous":
        return f"principal:{principal.name}"
    return f"addr:{request.remote_addr}"


def check_rate() -> None:
    if request.path.startswith(UNCOUNTED):
        return
    limits: RateLimits = current_app.extensions["fieldline_rate_limits"]
    wait = limits.hit(client_key())
    if wait is not None:
        raise TooManyRequests(
            f"more than {limits.item.amount} requests a minute; try again later",
            math.ceil(wait),
        )


def too_many(error: TooManyRequests) -> Response:
    response = problem(error.status, error.title, error.detail, retry_after=error.retry_after)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def register(app: Flask, settings: Settings) -> None:
    app.extensions["fieldline_rate_limits"] = RateLimits(settings)
    app.before_request(check_rate)
    app.register_error_handler(TooManyRequests, too_many)
