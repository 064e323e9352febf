"""``python -m rtrrl ...`` is the ``rtrrl`` command."""

from .app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
