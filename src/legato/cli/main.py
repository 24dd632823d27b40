"""The `legato` console script. Each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="legato",
    help="Legato: self-hostable cloud telephony with exact call statuses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Legato: self-hostable cloud telephony with exact call statuses."""


# Command modules register themselves on `app` when imported (one line each, below).
from legato.cli import accounts as _accounts  # noqa: E402,F401
from legato.cli import calls as _calls  # noqa: E402,F401
from legato.cli import db as _db  # noqa: E402,F401
from legato.cli import dnd as _dnd  # noqa: E402,F401
from legato.cli import numbers as _numbers  # noqa: E402,F401
from legato.cli import policy as _policy  # noqa: E402,F401
from legato.cli import serve as _serve  # noqa: E402,F401
from legato.cli import simulate as _simulate  # noqa: E402,F401
from legato.cli import statuses as _statuses  # noqa: E402,F401
from legato.cli import webhooks as _webhooks  # noqa: E402,F401
