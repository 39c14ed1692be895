"""`marinade review` (or `serve`): the review page in a browser, served on this machine."""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer

from marinade.cli.common import CliState, err, out
from marinade.errors import MarinadeError


def review(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Only this experiment's samples.")
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. A non-local one shows the page (and your samples)"
            " to the network; 0.0.0.0 also accepts any Host header.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="0 picks a free port.")] = 8765,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Print the URL without opening a browser.")
    ] = False,
    skip_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--skip-tag",
            metavar="TAG",
            help="Leave samples with this automatic tag (empty, copied, ...) out of the"
            " rating queue; they stay in the store and the reports. Repeatable.",
        ),
    ] = None,
) -> None:
    """Rate samples blind in the browser: a accept, r reject, e edit, s skip, u undo; A/B too.

    The page also shows the posting queue (Queue tab) and co-writes stories (Write tab).
    """
    from marinade.review.app import create_app
    from marinade.review.rating_order import check_skip_tags
    from marinade.review.server import WILDCARD_HOSTS, listen, serve, url_of

    state: CliState = ctx.obj
    store = state.store
    skip_tags = check_skip_tags(skip_tag or [])
    if experiment is not None and store.experiment_sample_count(experiment) == 0:
        raise MarinadeError(f"no samples in experiment {experiment!r}; see `marinade samples list`")
    allowed = ("*",) if host in WILDCARD_HOSTS else (host,)
    app = create_app(
        store.path, experiment, allowed_hosts=allowed, home=state.home, skip_tags=skip_tags
    )
    sock = listen(host, port)
    url = url_of(sock, host)
    out.print(url, markup=False)
    if not no_open:
        webbrowser.open(url)
    err.print("[dim]Ctrl-C stops the server; every rating is already saved.[/dim]")
    serve(app, sock)
