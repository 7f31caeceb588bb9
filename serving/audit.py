"""The partner access audit log: which key read which participants, when, through which resource."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from recommender.store.tables import audit_log
from serving.errors import ApiError, store_unavailable
from serving.request_context import request_id

if TYPE_CHECKING:
    from serving.auth import Principal
    from serving.state import ServingState

log = logging.getLogger("trajectory.audit")


def _write(state: ServingState, key_id: str, scopes: Iterable[str], method: str, resource: str,
           participant_ids: list[str] | None) -> None:
    if state.store is None:
        raise ApiError(503, "store_unavailable", "no audit store is configured; partner access is refused")
    row = {
        "at": datetime.now(UTC), "key_id": key_id, "scopes": " ".join(sorted(scopes)), "method": method,
        "resource": resource, "request_id": request_id.get(),
        "participant_ids": json.dumps(participant_ids) if participant_ids is not None else None,
    }
    try:
        with state.store.engine.begin() as conn:
            conn.execute(audit_log.insert().values(**row))
    except SQLAlchemyError:
        # No audit row, no partner data: an access that cannot be recorded is not granted.
        raise store_unavailable() from None
    log.info("partner access", extra={"key_id": key_id, "resource": resource,
                                      "participants": len(participant_ids or [])})


def record_partner_access(state: ServingState, principal: Principal, *, resource: str,
                          participant_ids: list[str], method: str = "POST") -> None:
    """Record a partner's read of these participants; raises 503 when it cannot be recorded."""
    _write(state, principal.key_id, principal.scopes, method, resource, participant_ids)


def record_denied_partner_access(state: ServingState, key_id: str, scopes: Iterable[str], request: Request) -> None:
    """A partner key knocked on a door it has no scope for: worth a line in the audit log too."""
    try:
        _write(state, key_id, scopes, request.method, f"DENIED {request.url.path}", None)
    except ApiError:
        log.warning("denied partner access not recorded: store unavailable", extra={"key_id": key_id})
