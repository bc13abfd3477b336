"""``python -m yizhan.cli``: the ``yizhan`` command."""

from yizhan.cli import main

main()
