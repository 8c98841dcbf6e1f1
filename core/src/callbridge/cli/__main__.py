"""``python -m callbridge.cli``: the same as the ``callbridge`` command."""

from . import main

main()
