"""How results are shown: one model (``view``) in frames (terminal, markdown, HTML); charts, pyperf."""
