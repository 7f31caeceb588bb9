"""`trajectory models`: promote a registered version to champion, roll back, list versions and aliases."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from recommender.cli import emit_json, fail

models_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Registered models and their aliases.")

NameOption = Annotated[str, typer.Option("--name", help="Registered model name.")]


@models_app.callback()
def models() -> None:
    """Promotion and rollback move the `champion` alias; serving workers follow it without a restart."""


def registry_status(name: str) -> dict[str, Any]:
    """Every version of a registered model with its aliases, the champion and its rollback history."""
    import mlflow

    from training import tracking

    client = mlflow.MlflowClient()
    registered = client.get_registered_model(name)
    by_version: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    return {
        "name": name,
        "champion": tracking.champion_version(name),
        "history": tracking.champion_history(name),
        "versions": [
            {"version": str(v.version), "aliases": sorted(by_version.get(str(v.version), [])), "run_id": v.run_id,
             "created": v.creation_timestamp}
            for v in versions
        ],
    }


@models_app.command()
def promote(
    version: Annotated[str, typer.Option("--version", help="The registered version to make champion.")],
    name: NameOption = "next-steps",
) -> None:
    """Move the champion alias to a version; the version it leaves becomes `previous-champion`."""
    from mlflow.exceptions import MlflowException

    from training import tracking

    tracking.configure()
    before = tracking.champion_version(name)
    try:
        tracking.set_champion(version, name)
    except MlflowException as exc:
        fail(f"cannot promote version {version} of '{name}': {exc.error_code.lower()}")
    emit_json({"action": "promote", "previous": before, **registry_status(name)})


@models_app.command()
def rollback(name: NameOption = "next-steps") -> None:
    """Move the champion alias back to the version it left last (repeat to go further back)."""
    from mlflow.exceptions import MlflowException

    from training import tracking

    tracking.configure()
    before = tracking.champion_version(name)
    try:
        tracking.rollback_champion(name)
    except LookupError as exc:
        fail(str(exc))
    except MlflowException as exc:
        fail(f"cannot roll back '{name}': {exc.error_code.lower()}")
    emit_json({"action": "rollback", "previous": before, **registry_status(name)})


@models_app.command(name="list")
def list_versions(name: NameOption = "next-steps") -> None:
    """Versions of a registered model, their aliases and the champion's history."""
    from mlflow.exceptions import MlflowException

    from training import tracking

    tracking.configure()
    try:
        emit_json(registry_status(name))
    except MlflowException as exc:
        fail(f"no registered model '{name}': {exc.error_code.lower()}")
