"""``python -m rtrrl.envs [--source SOURCE]``: print the table of environment ids.

The same table as ``rtrrl envs``; ``python -m rtrrl.envs popgym`` (the source alone) works too.
It is printed here, by the library, so that the library never imports the application.
"""

import argparse
import sys

from ._table import env_table


def main(argv: list[str] | None = None) -> int:
    """Print every id (or only those of one source); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m rtrrl.envs", description=__doc__)
    parser.add_argument("source", nargs="?", help="only ids of this source")
    parser.add_argument("--source", dest="source_flag", choices=("gymnax", "popgym", "brax"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print(env_table(args.source_flag or args.source))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
