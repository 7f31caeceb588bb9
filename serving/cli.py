"""`trajectory serve` and `trajectory demo`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

serve_app = typer.Typer(add_completion=False)
demo_app = typer.Typer(add_completion=False)


@serve_app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    store: Annotated[str | None, typer.Option(help="store URL (default: embedded SQLite under data/)")] = None,
) -> None:
    """Run the HTTP API (settings also come from TRAJECTORY_* environment variables)."""
    import uvicorn

    if store:
        os.environ["TRAJECTORY_STORE"] = store
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers)
