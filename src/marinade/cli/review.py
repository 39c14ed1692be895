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
            help="Address to listen on; 0.0.0.0: every IPv4 one. Off the loopback the page"
            " needs the secret link printed at start (a token, then a cookie).",
        ),
    ] = "127.0.0.1",
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            help="Another name the page answers to (a proxy's, an alias); repeatable.",
        ),
    ] = None,
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
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            help="auto, float32 or bfloat16 for the Write tab's model; auto: bfloat16 where "
            "the hardware computes it natively.",
        ),
    ] = None,
) -> None:
    """Rate samples blind in the browser: a accept, r reject, e edit, s skip, u undo; A/B too.

    The page also shows the posting queue (Queue tab) and co-writes stories (Write tab).
    """
    from marinade.review.app import create_app
    from marinade.review.rating_order import check_skip_tags
    from marinade.review.security import is_loopback, new_token
    from marinade.review.server import listen, serve, served_names, urls_of

    state: CliState = ctx.obj
    store = state.store
    skip_tags = check_skip_tags(skip_tag or [])
    if experiment is not None and store.experiment_sample_count(experiment) == 0:
        raise MarinadeError(f"no samples in experiment {experiment!r}; see `marinade samples list`")
    if dtype is not None:  # checked now, not when the Write tab first loads a model
        from marinade.models import pick_device
        from marinade.precision import choose_precision

        choose_precision(dtype, pick_device())
    token = None if is_loopback(host) else new_token()
    app = create_app(
        store.path,
        experiment,
        allowed_hosts=served_names(host, tuple(allow_host or ())),
        home=state.home,
        skip_tags=skip_tags,
        token=token,
        dtype=dtype,
    )
    sock = listen(host, port)
    urls = urls_of(sock, host, token)
    if token is not None:
        err.print(
            f"Warning: the review page is open to the network on {host}: anyone with this"
            " link can rate samples and edit, drop or retry queued posts. The link holds a"
            " secret token, printed only now; it travels as plain http, so share it only on"
            " a network you trust.",
            markup=False,
        )
    for url in urls:
        out.print(url, markup=False)
    if not no_open:
        webbrowser.open(urls[0])
    err.print("[dim]Ctrl-C stops the server; every rating is already saved.[/dim]")
    serve(app, sock)
