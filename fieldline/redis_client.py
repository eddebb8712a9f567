"""Redis clients from FIELDLINE_REDIS_URL, the one place that reads it.

The setting names a plain server (`redis://`, `rediss://`, `unix://`, redis-py's forms) or a
master that Redis Sentinel keeps, `redis+sentinel://[user:password@]host:port[,host:port...]/
service_name`: the form the `limits` library reads (the API rate limit hands it the same URL,
server/limits/rates.py), so one value serves every part. `limits` takes the whole path as the
service name, so a Sentinel URL has no database number: such a deployment uses database 0 and
keeps apart by FIELDLINE_REDIS_PREFIX. Clients of a Sentinel URL ask the sentinels for the
master on each new connection, so they follow a failover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from fieldline.settings import SettingsError

SETTING = "FIELDLINE_REDIS_URL"
PLAIN_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    auth: dict[str, str]  # username and password, for the sentinels and the master alike


def check_url(url: str) -> str:
    """The URL when Fieldline can use it; ValueError saying what is wrong otherwise."""
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == SENTINEL_SCHEME:
        sentinel_target(url)
    elif scheme not in PLAIN_SCHEMES:
        raise ValueError("must be a redis://, rediss://, unix:// or redis+sentinel:// URL")
    return url


def sentinel_target(url: str) -> SentinelTarget:
    """What a redis+sentinel:// URL names; ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    hosts = parts.netloc.rpartition("@")[2]
    sentinels = []
    for location in hosts.split(","):
        host, _, port = location.strip().rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"sentinel {location.strip()!r} is not host:port "
                f"({SENTINEL_SCHEME}://host:port[,host:port...]/service_name)"
            )
        sentinels.append((host.strip("[]"), int(port)))
    service_name = parts.path.strip("/")
    if not service_name or "/" in service_name:
        raise ValueError(
            "the path must be the master's service name alone "
            f"({SENTINEL_SCHEME}://host:port[,host:port...]/service_name; no database number)"
        )
    if parts.query or parts.fragment:
        raise ValueError("takes no query or fragment")
    auth = {}
    if parts.username:
        auth["username"] = unquote(parts.username)
    if parts.password:
        auth["password"] = unquote(parts.password)
    return SentinelTarget(tuple(sentinels), service_name, auth)


def _target(url: str) -> SentinelTarget | None:
    try:
        check_url(url)
        return sentinel_target(url) if url.startswith(f"{SENTINEL_SCHEME}://") else None
    except ValueError as exc:
        raise SettingsError(f"{SETTING}: {exc}") from None


def _sentinel_kwargs(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    # The sentinels get the same credentials as the master (as `limits` gives them) and the
    # same socket timeouts, so that a sentinel that is away is skipped as soon.
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    return {**target.auth, **timeouts}


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A client of the server, or of the master, FIELDLINE_REDIS_URL names."""
    target = _target(url)
    if target is None:
        client: redis.Redis = redis.Redis.from_url(url, **options)
        return client
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs=_sentinel_kwargs(target, options),
        **target.auth,
        **options,
    )
    return sentinel.master_for(target.service_name)


class _SentinelMaster(aioredis.Redis):
    """Closing it closes its connections to the sentinels too: an event loop's client must
    leave nothing open when its loop ends."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for sentinel in self.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
            await sentinel.aclose()


def async_client(url: str, **options: Any) -> aioredis.Redis:
    """The asyncio client of the server, or of the master, FIELDLINE_REDIS_URL names."""
    target = _target(url)
    if target is None:
        client: aioredis.Redis = aioredis.Redis.from_url(url, **options)
        return client
    sentinel = AsyncSentinel(
        list(target.sentinels),
        sentinel_kwargs=_sentinel_kwargs(target, options),
        **target.auth,
        **options,
    )
    master: aioredis.Redis = sentinel.master_for(target.service_name, redis_class=_SentinelMaster)
    return master
