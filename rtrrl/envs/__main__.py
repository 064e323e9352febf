"""``python -m rtrrl.envs [source]``: print the table of environment ids."""

import sys

from . import env_table


def main(argv: list[str] | None = None) -> None:
    """Print every id (or only those of the source named by the first argument)."""
    argv = sys.argv[1:] if argv is None else argv
    print(env_table(argv[0] if argv else None))


if __name__ == "__main__":
    main()
