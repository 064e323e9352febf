"""Fail when the typed public API's completeness falls below a threshold (run by `make lint`).

``python tools/verifytypes_score.py [--threshold 95]`` runs

    pyright --verifytypes rtrrl --ignoreexternal --outputjson

on this working tree's ``rtrrl`` and prints the completeness score: the share of the
symbols ``rtrrl`` exports whose types pyright knows fully. Below the threshold it lists the
symbols that are not and exits 1.

pyright reads third-party packages (jax, equinox, jaxtyping) through the Python interpreter
it finds on ``PATH``, not the ``venv`` of ``pyproject.toml``, and an interpreter without them
makes every annotation that mentions them unknown. The script therefore puts the interpreter
running it (the project's ``.venv``) first on ``PATH``, and this repository's root first on
``PYTHONPATH`` so that an editable install of another checkout is not the one measured.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "rtrrl"


def verifytypes_report() -> dict:
    """pyright's ``--verifytypes`` JSON report for this working tree's package."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "pyright",
        "--verifytypes",
        PACKAGE,
        "--ignoreexternal",
        "--outputjson",
    ]
    # pyright exits 1 whenever a symbol is incomplete; the JSON on stdout is what counts.
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.exit(f"pyright --verifytypes gave no JSON report:\n{done.stdout}{done.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=95.0, help="minimum score, in %%")
    args = parser.parse_args(argv)

    completeness = verifytypes_report()["typeCompleteness"]
    measured = Path(completeness.get("packageRootDirectory") or "")
    if measured != ROOT / PACKAGE:
        print(f"verifytypes measured {measured or 'nothing'}, not {ROOT / PACKAGE}.")
        return 1
    counts = completeness["exportedSymbolCounts"]
    total = sum(counts.values())
    score = 100.0 * completeness["completenessScore"]
    print(
        f"pyright --verifytypes {PACKAGE} --ignoreexternal: {score:.1f}% "
        f"({counts['withKnownType']} of {total} exported symbols fully known; "
        f"threshold {args.threshold:g}%)"
    )
    if score >= args.threshold:
        return 0
    for symbol in completeness["symbols"]:
        if symbol["isExported"] and not symbol["isTypeKnown"]:
            messages = [d["message"].splitlines()[0] for d in symbol["diagnostics"]]
            print(f"  {symbol['name']}: {'; '.join(messages) or 'type not fully known'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
