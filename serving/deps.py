"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.settings import Settings
from serving.state import ServingState


def get_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (tests and operators may pass their own)."""
    settings: Settings = request.app.state.settings
    return settings


StateDep = Annotated[ServingState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
