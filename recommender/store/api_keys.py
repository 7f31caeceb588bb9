"""API keys: created once (the secret is shown once), stored as a SHA-256 hash, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recommender.store.tables import api_keys

SCOPES: Final = ("frontend", "partner", "analyst", "admin")
PREFIX: Final = "trj"


class ApiKeyError(ValueError):
    """A key request that cannot be honoured (unknown scope, unknown key id)."""


@dataclass(frozen=True)
class ApiKey:
    """What the service knows of a key: never the secret itself."""

    key_id: str
    name: str
    scopes: frozenset[str]
    rate_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_id_of(secret: str) -> str | None:
    """The public id inside a presented key (`trj_<id>_<random>`), or None when it is not shaped like one."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def _validate_scopes(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ApiKeyError(f"scope must be one or more of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    return frozenset(scopes)


def create_key(engine: Engine, name: str, scopes: list[str] | tuple[str, ...], *,
               rate_per_minute: int | None = None) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret; the secret is not kept and cannot be shown again."""
    wanted = _validate_scopes(scopes)
    key_id = secrets.token_hex(6)
    secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                key_id=key_id, key_hash=hash_key(secret), name=name, scopes=" ".join(sorted(wanted)),
                rate_per_minute=rate_per_minute, created_at=now,
            )
        )
    return ApiKey(key_id, name, wanted, rate_per_minute, now, None), secret


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _row_to_key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    created = _utc(m["created_at"])
    assert created is not None
    return ApiKey(
        key_id=str(m["key_id"]), name=str(m["name"]), scopes=frozenset(str(m["scopes"]).split()),
        rate_per_minute=m["rate_per_minute"], created_at=created, revoked_at=_utc(m["revoked_at"]),
    )


def verify_key(engine: Engine, secret: str) -> ApiKey | None:
    """The active key a presented secret belongs to, or None (unknown, wrong secret, or revoked)."""
    key_id = key_id_of(secret)
    if key_id is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None or not hmac.compare_digest(str(row._mapping["key_hash"]), hash_key(secret)):
        return None
    key = _row_to_key(row)
    return key if key.active else None


def revoke_key(engine: Engine, key_id: str) -> ApiKey:
    with engine.begin() as conn:
        conn.execute(
            api_keys.update().where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise ApiKeyError(f"no API key with id {key_id!r}")
    return _row_to_key(row)


def list_keys(engine: Engine) -> list[ApiKey]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.pk)).all()
    return [_row_to_key(r) for r in rows]
