"""``python -m finsentinel``: the same as the ``finsentinel`` command."""

from __future__ import annotations

from finsentinel.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
