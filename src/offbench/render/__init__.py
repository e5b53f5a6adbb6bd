"""How results are shown: the terminal, markdown, HTML, plots, pyperf files, progress."""
