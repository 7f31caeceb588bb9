"""Typed dependencies shared by the routers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request

from serving.settings import Settings
from serving.state import ServingState


async def get_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (tests and operators may pass their own)."""
    settings: Settings = request.app.state.settings
    return settings


StateDep = Annotated[ServingState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


T = TypeVar("T")
_PER_STATE_LOCK = threading.Lock()


def per_state(app: FastAPI, attr: str, make: Callable[[ServingState], T]) -> T:
    """The app's one `attr` object for its current serving state, made once on first use (thread-safe);
    a new state (a test's, or a reload) gets a new one."""
    state: ServingState = app.state.serving
    current: Any = getattr(app.state, attr, None)
    if current is None or current.state is not state:
        with _PER_STATE_LOCK:
            current = getattr(app.state, attr, None)
            if current is None or current.state is not state:
                current = make(state)
                setattr(app.state, attr, current)
    made: T = current
    return made
