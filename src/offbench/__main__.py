"""``python -m offbench``: the same as the ``offbench`` command."""

from offbench.entry import main

if __name__ == "__main__":
    main()
