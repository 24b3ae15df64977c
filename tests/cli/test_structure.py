"""The CLI's shape: commands registered from app.py only, no command module imports it, every
model option declared once and taken by every command that builds a target."""

import ast
from pathlib import Path

from resdiag.cli import app as app_module
from resdiag.cli.options import MODEL_OPTIONS, ModelOptions

CLI = Path(app_module.__file__).parent
PACKAGE = CLI.parent


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_command_module_imports_the_app():
    for path in CLI.glob("*_cmd.py"):
        assert "resdiag.cli.app" not in imports(path), path.name


def test_every_command_module_is_registered():
    registered = {fn.__module__ for _, fn in app_module.COMMANDS}
    assert registered == {f"resdiag.cli.{p.stem}" for p in CLI.glob("*_cmd.py")}


def test_model_options_are_one_list():
    import dataclasses

    assert [n for n, _ in MODEL_OPTIONS] == [f.name for f in dataclasses.fields(ModelOptions)]
    import typer.main

    command = typer.main.get_command(app_module.app)
    for name in ("grad-flow", "rank", "train"):
        params = {p.name for p in command.commands[name].params}
        assert {n for n, _ in MODEL_OPTIONS} <= params, name


def test_modules_stay_small():
    big = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
           if len(p.read_text().splitlines()) > 320]
    assert big == []


def test_no_positional_target_tuples_or_second_dispatch_left():
    text = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    for gone in ("grad_flow_config", "rank_config", "build_seeded", "def targets(", "def user_model("):
        assert gone not in text, gone
