"""API-key authentication, scopes and per-key rate limits for API v1."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from recommender.store.api_keys import ApiKey, hash_key, verify_key
from serving.audit import record_denied_partner_access
from serving.deps import SettingsDep, StateDep
from serving.errors import ApiError, store_unavailable
from serving.settings import Settings
from serving.state import ServingState

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer trj_...`")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id, its label and scopes (never the secret)."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scopes: tuple[str, ...]) -> bool:
        return "admin" in self.scopes or bool(self.scopes.intersection(scopes))


class KeyCache:
    """Verified keys for a few seconds: a request costs no database round trip, and a database outage
    does not lock out keys seen recently. Revocation takes effect within `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[ApiKey | None, float]] = {}
        self._lock = threading.Lock()

    def cached(self, secret: str) -> tuple[bool, ApiKey | None]:
        """(True, the key) when it was verified within `ttl` (None: known to be invalid); else (False, None)."""
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(hash_key(secret))
        if cached is not None and now - cached[1] < self.ttl:
            return True, cached[0]
        return False, None

    def lookup(self, state: ServingState, secret: str) -> ApiKey | None:
        digest = hash_key(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(digest)
        if cached is not None and now - cached[1] < self.ttl:
            return cached[0]
        if state.store is None:
            raise ApiError(503, "store_unavailable", "no key store is configured")
        try:
            key = verify_key(state.store.engine, secret)
        except SQLAlchemyError:
            if cached is not None and cached[0] is not None:
                return cached[0]  # the database is away: a key verified before still holds
            raise store_unavailable() from None
        with self._lock:
            if len(self._entries) > 100_000:  # guessed keys must not grow memory without bound
                self._entries.clear()
            self._entries[digest] = (key, now)
        return key


class RateLimiter:
    """A token bucket per key in this worker process: `per_minute` on average, bursts of ten seconds' worth."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key_id: str, per_minute: int) -> float:
        """0 when a request may pass now (and takes a token), else seconds until one may."""
        rate = per_minute / 60.0
        capacity = max(1.0, rate * 10.0)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate


class RateLimits(Protocol):
    def retry_after(self, key_id: str, per_minute: int) -> float: ...


def install_guards(app: FastAPI, settings: Settings, rate_limiter: RateLimits | None = None) -> None:
    """One key cache and one rate limiter per app, made with the app, not on a request. The limiter is this
    worker's own unless one shared by all workers is given (serving/shared_rate_limits.py)."""
    app.state.key_cache = KeyCache(settings.key_cache_seconds)
    app.state.rate_limiter = rate_limiter or RateLimiter()


def require(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys with any of `scopes` (admin admits all): 401 without a valid key,
    403 with a key of another scope, 429 over the key's rate."""

    async def dependency(
        request: Request,
        state: StateDep,
        settings: SettingsDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        # Async, on the event loop: a key seen in the last `key_cache_seconds` costs no thread hop and no
        # database round trip; only a look-up or an audit row goes to the thread pool.
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(401, "unauthorized", "an API key is required: Authorization: Bearer <key>")
        cache: KeyCache = request.app.state.key_cache
        limiter: RateLimits = request.app.state.rate_limiter
        secret = credentials.credentials
        hit, key = cache.cached(secret)
        if not hit:
            key = await run_in_threadpool(cache.lookup, state, secret)
        if key is None:
            raise ApiError(401, "unauthorized", "the API key is not valid or was revoked")
        principal = Principal(key.key_id, key.name, key.scopes)
        request.state.principal = principal
        if not principal.allows(scopes):
            if "partner" in principal.scopes:
                await run_in_threadpool(record_denied_partner_access, state, principal.key_id, principal.scopes,
                                        request)
            raise ApiError(403, "forbidden", f"this endpoint needs the scope {' or '.join(scopes)}")
        wait = limiter.retry_after(key.key_id, key.rate_per_minute or settings.rate_limit_per_minute)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"too many requests for this key; retry in {wait:.1f} s",
                           headers={"Retry-After": str(max(1, round(wait)))})
        return principal

    return dependency


FrontendDep = Annotated[Principal, Depends(require("frontend"))]
PartnerDep = Annotated[Principal, Depends(require("partner"))]
AnalystDep = Annotated[Principal, Depends(require("analyst"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]
FrontendOrAnalystDep = Annotated[Principal, Depends(require("frontend", "analyst"))]
