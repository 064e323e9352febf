"""Using the ``rtrrl`` command: a bare ``rtrrl`` explains itself instead of training,
``--version``, flags without a command, ``python -m rtrrl``, and help text on every flag of
``rtrrl train`` (taken from `TrainConfig`'s attribute docstrings)."""

import ast
import contextlib
import dataclasses
import inspect
import io
import os
import re
import subprocess
import sys

import pytest

import rtrrl
from rtrrl.app import config as config_module
from rtrrl.app.cli import main
from rtrrl.app.config import TrainConfig


def test_bare_rtrrl_prints_the_help_and_trains_nothing(tmp_path, monkeypatch, capsys):
    """Before, ``rtrrl`` alone started a million-step run into ``runs/``."""
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: rtrrl" in out
    for command in ("train", "eval", "plot", "envs"):
        assert command in out
    assert list(tmp_path.iterdir()) == []  # no runs/ folder, nothing written


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag_prints_the_package_version(flag, capsys):
    assert main([flag]) == 0
    assert capsys.readouterr().out.strip() == f"rtrrl {rtrrl.__version__}"


def test_flags_without_a_command_are_refused_naming_the_command_to_use(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["--env", "CartPole-v1", "--steps", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "rtrrl train --env CartPole-v1 --steps 1000" in err
    assert list(tmp_path.iterdir()) == []


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m rtrrl ARGS`` in a fresh interpreter, importing this checkout's package."""
    root = os.path.dirname(os.path.dirname(rtrrl.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "rtrrl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_python_dash_m_rtrrl_is_the_rtrrl_command():
    version = _cli("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"rtrrl {rtrrl.__version__}"
    bare = _cli()
    assert bare.returncode == 0, bare.stderr
    assert "usage: rtrrl" in bare.stdout
    envs = _cli("envs", "--source", "gymnax")
    assert envs.returncode == 0, envs.stderr
    assert "CartPole-v1" in envs.stdout


def _field_docstrings(cls) -> dict[str, str]:
    """Attribute docstrings (the string right after a field), read from the source as tyro
    reads them."""
    body = ast.parse(inspect.getsource(config_module)).body
    (node,) = [n for n in body if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
    docs = {}
    for field, after in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = after.value.value
    return docs


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_every_train_flag_has_help_text_from_its_docstring(monkeypatch):
    """Every `TrainConfig` field has a non-empty docstring, and ``rtrrl train --help`` shows
    it beside the field's flag."""
    monkeypatch.setenv("COLUMNS", "200")
    docs = _field_docstrings(TrainConfig)
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert [n for n in names if not docs.get(n, "").strip()] == []
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    help_text = _normalised(stdout.getvalue())
    for name in names:
        flag = "--" + name.replace("_", "-")
        starts = [m.start() for m in re.finditer(re.escape(flag) + r"(?![\w-])", help_text)]
        assert starts, f"{flag} missing from the help"
        opening = " ".join(docs[name].split()[:4])
        # The flag also appears in other flags' text: one of its places must show it.
        shown = [help_text[start : start + 400 + len(flag)] for start in starts]
        assert any(opening in text for text in shown), f"{flag}: help lacks {opening!r}"
