"""`trajectory serve` and `trajectory demo`."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

DEMO_WORLD = Path("data/demo/world")
serve_app = typer.Typer(add_completion=False)
GRACEFUL_SECONDS = 30  # requests in flight may finish this long after SIGTERM
demo_app = typer.Typer(add_completion=False)


@serve_app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    store: Annotated[str | None, typer.Option(help="store URL (default: embedded SQLite under data/)")] = None,
) -> None:
    """Run the HTTP API (settings also come from TRAJECTORY_* environment variables)."""
    if store:
        os.environ["TRAJECTORY_STORE"] = store
    _run(host, port, workers)


def _run(host: str, port: int, workers: int) -> None:
    """uvicorn with our JSON logs; SIGTERM finishes requests in flight (up to 30 s) before exiting. Several
    workers share one loaded state: the parent loads it once and forks them (serving/prefork.py)."""
    import tempfile

    import uvicorn

    if workers == 1:
        uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, log_config=None,
                    timeout_graceful_shutdown=GRACEFUL_SECONDS)
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics to files here; /metrics on any worker sums them all. Set before the
        # metrics module is imported: it picks its storage then.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="trajectory-metrics-")
    raise typer.Exit(_run_prefork(host, port, workers))


def _run_prefork(host: str, port: int, workers: int) -> int:
    import uvicorn

    from serving.app import create_app
    from serving.logs import configure_logging
    from serving.prefork import Supervisor, share_loaded_objects
    from serving.settings import get_settings
    from serving.shared_rate_limits import SharedRateLimiter
    from serving.state import load_state
    from serving.store_changes import StoreChanges

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    state = load_state(settings)
    if state.store is not None:
        state.store.engine.dispose()  # no connection of the parent's is inherited by a worker
    limiter = SharedRateLimiter()  # made before the fork: one key's rate holds across all workers
    changes = StoreChanges()  # likewise: a write of any worker is seen by all at their next request
    share_loaded_objects()
    config = uvicorn.Config(create_app, factory=True, host=host, port=port, log_config=None,
                            timeout_graceful_shutdown=GRACEFUL_SECONDS)
    sock = config.bind_socket()

    def serve(listening: socket.socket) -> None:
        app = create_app(settings, state=state, preloaded=True, rate_limiter=limiter, store_changes=changes)
        uvicorn.Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=GRACEFUL_SECONDS)).run(
            sockets=[listening]
        )

    return Supervisor(serve, sock, workers).run()


def _step(args: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run one `trajectory` subcommand (the public command-line contract) and parse its JSON report."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-c", "from recommender.cli import main; main()", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        fail(f"demo step '{args[0]}' failed: {reason}")
    report: dict[str, object] = json.loads(done.stdout)
    return report


@demo_app.command()
def demo(
    participants: Annotated[int, typer.Option(min=100, help="size of the synthetic world")] = 20_000,
    seed: Annotated[int, typer.Option(help="world seed")] = 7,
    out: Annotated[Path, typer.Option(help="where the world is written")] = DEMO_WORLD,
    store: Annotated[str | None, typer.Option(help="store URL (default: embedded SQLite under data/)")] = None,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="start the API at the end")] = True,
) -> None:
    """Synthetic world -> ingest -> trained models in MLflow -> the API, all on the embedded default."""
    import json

    env = dict(os.environ)
    if store:
        env["TRAJECTORY_STORE"] = store
    world = _step(["synth", "--participants", str(participants), "--seed", str(seed), "--out", str(out)], env)
    ingest = _step(["ingest", str(out / "aif")], env)
    trained = _step(["train", "--config", str(_default_config())] if _default_config() else ["train"], env)
    manifest = json.loads((out / "aif" / "manifest.json").read_text(encoding="utf-8"))
    # The world is dated: the API answers as of its export date, when its upcoming events are open.
    as_of = str(manifest["exported_at"])[:10]
    summary = {"world": world, "ingest": ingest, "train": trained, "as_of": as_of}
    if not serve_api:
        emit_json(summary)
        return
    typer.echo(json.dumps({"as_of": as_of, "registered": trained.get("registered")}, ensure_ascii=False), err=True)
    key = _step(["keys", "create", "--scope", "frontend", "--scope", "analyst", "--name", "demo"], env)["key"]
    example = _a_participant_with_history(out / "aif")
    typer.echo(f"API on http://{host}:{port}/docs — try: curl -H 'Authorization: Bearer {key}' "
               f"'http://{host}:{port}/v1/participants/{example}/next-steps?k=5'", err=True)
    os.environ["TRAJECTORY_AS_OF"] = as_of
    if store:
        os.environ["TRAJECTORY_STORE"] = store
    _run(host, port, 1)


def _default_config() -> Path | None:
    path = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "next_steps_baselines.yaml"
    return path if path.exists() else None


def _a_participant_with_history(aif_dir: Path) -> str:
    import pandas as pd

    path = aif_dir / "achievements.csv"
    ids = pd.read_csv(path, usecols=["participant_id"], dtype=str, nrows=1000)["participant_id"]
    return str(ids.value_counts().index[0])
