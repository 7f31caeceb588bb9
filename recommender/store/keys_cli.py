"""`trajectory keys`: create, list and revoke the service's API keys (the secret is printed once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from recommender.cli import emit_json, fail

if TYPE_CHECKING:
    from recommender.store.store import Store

app = typer.Typer(add_completion=False, no_args_is_help=True)
StoreOption = Annotated[
    str | None, typer.Option("--store", help="Store URL (default: TRAJECTORY_STORE or sqlite:///data/trajectory.db).")
]


def _store(url: str | None) -> Store:
    from recommender.store.store import Store

    store = Store(url)
    store.migrate()
    return store


@app.command()
def create(
    scope: Annotated[list[str], typer.Option("--scope", help="frontend, partner, analyst or admin (repeatable).")],
    name: Annotated[str, typer.Option("--name", help="Who the key is for (a front end, a university).")],
    rate_per_minute: Annotated[
        int | None, typer.Option("--rate-per-minute", min=1, help="Own rate limit (default: the service's).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Create a key; prints its id and secret as JSON. Only a hash is stored: keep the secret now."""
    from recommender.store.api_keys import ApiKeyError, create_key

    with _store(store) as s:
        try:
            key, secret = create_key(s.engine, name, scope, rate_per_minute=rate_per_minute)
        except ApiKeyError as exc:
            fail(str(exc))
    emit_json({"key_id": key.key_id, "name": key.name, "scopes": sorted(key.scopes), "key": secret})


@app.command("list")
def list_(store: StoreOption = None) -> None:
    """Every key with its scopes and state (never a secret)."""
    from recommender.store.api_keys import list_keys

    with _store(store) as s:
        keys = list_keys(s.engine)
    emit_json([
        {"key_id": k.key_id, "name": k.name, "scopes": sorted(k.scopes), "rate_per_minute": k.rate_per_minute,
         "created_at": k.created_at.isoformat(), "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}
        for k in keys
    ])


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (the part after trj_).")],
           store: StoreOption = None) -> None:
    """Revoke a key; running services stop accepting it within their key cache time (30 s by default)."""
    from recommender.store.api_keys import ApiKeyError, revoke_key

    with _store(store) as s:
        try:
            key = revoke_key(s.engine, key_id)
        except ApiKeyError as exc:
            fail(str(exc))
    emit_json({"key_id": key.key_id, "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None})
