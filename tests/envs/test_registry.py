"""Ids, options and errors of `make`, the ``python -m rtrrl.envs`` table, lazy imports."""

import subprocess
import sys

import pytest

import rtrrl.envs as envs
from rtrrl.envs import __main__ as envs_main
from rtrrl.envs._compat import require


def test_unknown_id_suggests_close_ids():
    with pytest.raises(ValueError, match="Unknown environment id 'CartPol-v1'") as error:
        envs.make("CartPol-v1")
    assert "CartPole-v1" in str(error.value)
    with pytest.raises(ValueError, match="brax/halfcheetah"):
        envs.make("halfcheetah")


def test_option_the_environment_does_not_take():
    with pytest.raises(ValueError, match=r"does not take the option\(s\) \['memory_length'\]"):
        envs.make("CartPole-v1", memory_length=4)
    with pytest.raises(ValueError, match="accepts"):
        envs.make("CartPole-vel", obs_mask="pos")


def test_names_cover_every_source():
    ids = envs.names()
    assert len(ids) == len(set(ids))
    for required in ["CartPole-v1", "CartPole-vel", "CartPole-pos", "MemoryChain-bsuite"]:
        assert required in ids
    assert "brax/inverted_pendulum" in envs.names("brax")
    assert all(envs.spec(n).source == "gymnax" for n in envs.names("gymnax"))


def test_missing_library_error_tells_how_to_install():
    with pytest.raises(ImportError, match=r"pip install rtrrl\[envs\]"):
        require("surely_not_an_installed_module", purpose="The test environment")


def test_table_lists_ids_with_sizes_and_spaces(capsys):
    envs_main.main(["gymnax"])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("CartPole-v1 "))
    assert line.split()[1:4] == ["4", "Discrete(2)", "gymnax"]
    brax = envs.env_table("brax")
    assert "brax/halfcheetah" in brax and "Box(6, [-1, 1])" in brax


def test_envs_module_takes_the_source_as_a_flag_like_the_cli(capsys):
    """``python -m rtrrl.envs --source popgym`` is ``rtrrl envs --source popgym``."""
    assert envs_main.main(["--source", "popgym"]) == 0
    out = capsys.readouterr().out
    assert "popgym-RepeatPreviousEasy-v0" in out and "CartPole-v1 " not in out
    assert f"{len(envs.names('popgym'))} environments" in out


def test_import_rtrrl_does_not_import_gymnax_or_brax():
    code = (
        "import sys, rtrrl, rtrrl.envs; "
        "print(sorted(m for m in ('gymnax', 'brax', 'mujoco') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("task", ["LabyrinthEscape", "LabyrinthExplore"])
def test_unported_popgym_tasks_say_so(task):
    name = f"popgym-{task}Medium-v0"
    assert name not in envs.names()
    with pytest.raises(ValueError, match=f"not available.*{task} is not ported"):
        envs.make(name)
