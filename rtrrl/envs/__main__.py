"""``python -m rtrrl.envs [--source SOURCE]``: print the table of environment ids.

The same as ``rtrrl envs``; ``python -m rtrrl.envs popgym`` (the source alone) works too.
"""

import sys


def main(argv: list[str] | None = None) -> int:
    """Print every id (or only those of one source); returns the exit status."""
    from ..cli import main as cli_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and not argv[0].startswith("-"):
        argv = ["--source", argv[0]]
    return cli_main(["envs", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
