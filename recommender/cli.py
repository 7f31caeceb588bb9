"""Root of the `trajectory` command: mounts each package's subcommands lazily for a fast start."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click
import typer

# name -> (module:attribute of a typer.Typer, one-line help). Imported only when the command runs,
# so `trajectory --help` stays fast and `recommender` never imports a higher package at import time.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("recommender.synth.cli:app", "Generate a synthetic world: DIR/aif (AIF v1) and DIR/truth."),
    "ingest": ("recommender.store.cli:app", "Validate, normalize and merge AIF datasets into the store."),
    "train": ("training.cli:train_app", "Train the models: one MLflow run, models registered."),
    "serve": ("serving.cli:serve_app", "Run the HTTP API."),
    "demo": ("serving.cli:demo_app", "Synthetic world -> trained models -> API, on the embedded default."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, help_text: str) -> click.Command:
    def run() -> None:
        fail(f"'{name}' is not available in this installation")

    return click.Command(name, callback=run, help=help_text)


def fail(reason: str, code: int = 1) -> None:
    """Exit non-zero with a one-line reason on stderr, as the command-line contract says."""
    click.echo(f"error: {reason}", err=True)
    sys.exit(code)


def emit_json(payload: Any) -> None:
    """Print a report as JSON on stdout."""
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


@click.group(cls=LazyGroup, help="Trajectory recommender: next steps, trajectories, profiles, mentors, teams.")
@click.version_option(package_name="trajectory-recommender")
def cli() -> None:
    pass


def main() -> None:
    cli()
