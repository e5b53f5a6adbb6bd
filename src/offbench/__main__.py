"""``python -m offbench``: the same as the ``offbench`` command."""

from offbench.cli import main

if __name__ == "__main__":
    main()
