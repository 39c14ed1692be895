"""Every command's --help shows the defaults its options' help promises.

rich, which renders typer's help, reads "[default: ...]" as a markup tag and drops it
unless the bracket is escaped; this walks every command so a new option cannot lose
its default silently."""

import typer

from marinade.cli import app


def commands(group, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from commands(command, (*path, name))


def test_every_default_written_in_a_help_is_shown(cli):
    root = typer.main.get_command(app)
    checked = 0
    for path, command in commands(root):
        promised = sum(
            (param.help or "").count("[default:")
            for param in command.params
            if param.param_type_name == "option"
        )
        if not promised:
            continue
        result = cli(*path, "--help")
        assert result.exit_code == 0, path
        shown = " ".join(result.stdout.replace("│", " ").split()).count("[default:")
        assert shown >= promised, f"marinade {' '.join(path)} --help lost a [default: ...]"
        checked += 1
    assert checked >= 10  # train, generate, queue, accounts, ... all have some
