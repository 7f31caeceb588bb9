"""Root of the `trajectory` command: mounts each package's subcommands lazily for a fast start."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, NoReturn

import typer
import typer.core

# name -> (module:attribute of a typer.Typer, one-line help). Imported only when the command runs,
# so `trajectory --help` stays fast and `recommender` never imports a higher package at import time.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("recommender.synth.cli:app", "Generate a synthetic world: DIR/aif (AIF v1) and DIR/truth."),
    "ingest": ("recommender.store.cli:app", "Validate, normalize and merge AIF datasets into the store."),
    "train": ("training.cli:train_app", "Train the models: one MLflow run, models registered."),
    "evaluate": ("training.cli:evaluate_app", "Offline metrics vs baselines and the oracle on a temporal split."),
    "backtest": ("training.cli:backtest_app", "Fit before a date, write every participant's top-K next steps."),
    "tune": ("training.cli:tune_app", "Optuna study over a model's hyperparameters, trials in MLflow."),
    "serve": ("serving.cli:serve_app", "Run the HTTP API."),
    "keys": ("recommender.store.keys_cli:app", "Create, list and revoke API keys (stored hashed)."),
    "profiles": ("features.cli:profiles_app", "Competence profiles: prequential replay, fit, one profile."),
    "admissions": ("training.admissions_cli:admissions_app", "Score participants against an admissions program."),
    "demo": ("serving.cli:demo_app", "Synthetic world -> trained models -> API, on the embedded default."),
    "adapt": ("recommender.adapters.cli:app", "Convert organizers' exports (olympiad, hackathon, courses) to AIF."),
    "identity": ("recommender.identity.cli:app", "Resolve the same person across sources; review and undo merges."),
    "export": ("recommender.export.cli:app", "Export data for people outside the product (research)."),
    "indicators": ("recommender.indicators.cli:app", "Roadmap indicators of a year as JSON and a report."),
    "mentors": ("training.mentors_cli:mentors_app", "Mentor assignment for an event or a region under capacities."),
    "teams": ("training.teams_cli:teams_app", "Form an event's teams within its size limits."),
    "models": ("training.models_cli:models_app", "Promote or roll back the champion model; list versions."),
}


class LazyGroup(typer.core.TyperGroup):
    """The root group; each subcommand's module is imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return _unavailable(cmd_name, target[1])
            raise
        app = getattr(module, attr)
        command = typer.main.get_command(app)
        command.name = cmd_name
        return command


def _unavailable(name: str, help_text: str) -> Any:
    app = typer.Typer(add_completion=False)

    @app.command(name=name, help=help_text)
    def run() -> None:
        fail(f"'{name}' is not available in this installation")

    return typer.main.get_command(app)


def fail(reason: str, code: int = 1) -> NoReturn:
    """Exit non-zero with a one-line reason on stderr, as the command-line contract says."""
    typer.echo(f"error: {reason}", err=True)
    sys.exit(code)


def emit_json(payload: Any) -> None:
    """Print a report as JSON on stdout."""
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


cli = typer.Typer(
    cls=LazyGroup,
    add_completion=False,
    no_args_is_help=True,
    help="Trajectory recommender: next steps, trajectories, profiles, mentors, teams.",
)


def _version(value: bool) -> None:
    if value:
        from recommender import __version__

        typer.echo(__version__)
        raise typer.Exit()


@cli.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


def main() -> None:
    cli()
