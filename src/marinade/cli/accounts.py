"""`marinade accounts add|list|rm`: where posts go. Tokens stay in env vars or private files."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marinade.cli.common import AsJson, CliState, out, print_json_line

app = typer.Typer(help="Accounts to post to.", no_args_is_help=True)


@app.command("add")
def add_command(
    ctx: typer.Context,
    platform: Annotated[
        str, typer.Argument(help="mastodon, bluesky, tumblr, x, webhook or outbox.")
    ],
    name: Annotated[str, typer.Option("--name", help="What the queue calls this account.")],
    instance: Annotated[
        str | None, typer.Option("--instance", help="Mastodon: https://mastodon.social")
    ] = None,
    handle: Annotated[str | None, typer.Option("--handle", help="Bluesky: you.bsky.social")] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="Bluesky: the PDS \\[default: bsky.social]")
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url", help="X, Tumblr: \\[default: https://api.twitter.com, api.tumblr.com]"
        ),
    ] = None,
    blog: Annotated[
        str | None, typer.Option("--blog", help="Tumblr: the blog, as in myblog.tumblr.com")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="Webhook: where to POST.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Outbox: a JSON-lines file.")] = None,
    token_env: Annotated[
        str | None, typer.Option("--token-env", help="Environment variable holding the token.")
    ] = None,
    token_file: Annotated[
        str | None, typer.Option("--token-file", help="File holding the token (mode 600).")
    ] = None,
    hashtag: Annotated[
        str | None, typer.Option("--hashtag", help="Appended to model-written posts.")
    ] = None,
    visibility: Annotated[
        str | None, typer.Option("--visibility", help="Mastodon: public, unlisted, private.")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Override the platform's limit.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds to wait for an answer [30].")
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Posts without --account go here.")
    ] = False,
) -> None:
    """Add (or replace) an account. The token itself is never stored."""
    from marinade.publishing.accounts import add_account

    state: CliState = ctx.obj
    settings = {
        "instance": instance,
        "handle": handle,
        "service": service,
        "api_url": api_url,
        "blog": blog,
        "url": url,
        "path": path,
        "token_env": token_env,
        "token_file": token_file,
        "hashtag": hashtag,
        "visibility": visibility,
        "max_length": max_length,
        "timeout": timeout,
    }
    account = add_account(state.store, name, platform, settings, default)
    out.print(f"account [bold]{account.name}[/bold] ({account.platform}) saved")


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: AsJson = False,
) -> None:
    """Every account and where its token is read from."""
    from marinade.publishing.accounts import accounts

    state: CliState = ctx.obj
    every = accounts(state.store)
    if as_json:
        for account in every:
            print_json_line(account.public())
        return
    table = Table("name", "platform", "where", "token from", "hashtag", "default", box=None)
    for account in every:
        shown = account.public()  # a webhook's URL masked
        where = next(
            (
                str(shown[key])
                for key in ("instance", "handle", "blog", "url", "path", "api_url")
                if shown.get(key)
            ),
            "",
        )
        token = (
            f"${account.setting('token_env')}"
            if account.setting("token_env")
            else account.setting("token_file", "")
        )
        table.add_row(
            account.name,
            account.platform,
            where,
            token,
            account.setting("hashtag", ""),
            "yes" if account.is_default else "",
        )
    out.print(table)


@app.command("rm")
def rm_command(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Remove an account (its queued items stay, and wait for an account of that name)."""
    from marinade.publishing.accounts import remove_account

    state: CliState = ctx.obj
    remove_account(state.store, name)
    out.print(f"account {name} removed")
