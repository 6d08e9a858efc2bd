"""The `stylecli` command: a thin Typer shell over the library (no model math here).

Heavy modules (torch, the models) are imported inside the commands so `stylecli --help` stays instant.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stylecli import __version__
from stylecli.cli.help_text import PlainHelpGroup

app = typer.Typer(
    name="stylecli",
    cls=PlainHelpGroup,
    help=(
        "Edit real face photos with StyleGAN2 and the e4e encoder.\n\n"
        "\b\nExamples:\n"
        "  stylecli invert photo.jpg -o out/ --json\n"
        "  stylecli align group.jpg --faces all -o aligned/\n"
        "  stylecli edit photo.jpg --direction age --strength 3 --paste-back\n"
        "  stylecli invert face.png --no-align --checkpoint e4e_ffhq_encode.pt\n"
        "  stylecli weights list"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no rich import, so `stylecli --help` stays instant
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
weights_app = typer.Typer(
    help="List, download, verify and import the model files stylecli uses (weights.toml).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(weights_app, name="weights")
cache_app = typer.Typer(
    help="List and clean the converted (fast-loading) copies of checkpoints in stylecli's cache.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(cache_app, name="cache")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"stylecli {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool | None, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """Edit real face photos with StyleGAN2 and the e4e encoder."""
    from stylecli.allocator import retain_freed_memory

    retain_freed_memory()  # large activations reuse warm heap memory (STYLECLI_KEEP_HEAP=0 to opt out)


def main() -> None:
    app()


# The commands register themselves on `app` when their modules load, in this (help) order.
# isort: off
from stylecli.cli import photos  # noqa: E402,F401
from stylecli.cli import cache_cmd, directions_cmd, evaluate_cmd, serve_cmd, train_cmd, weights_cmd  # noqa: E402,F401
# isort: on
