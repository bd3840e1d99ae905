"""``python -m m365sync``: the same as the ``m365sync`` command."""

from m365sync.cli import main

main()
