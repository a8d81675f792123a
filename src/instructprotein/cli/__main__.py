"""``python -m instructprotein.cli``: the same as the ``instructprotein`` command."""

from instructprotein.cli import main

main()
