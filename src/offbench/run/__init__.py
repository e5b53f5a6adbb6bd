"""The parent process of a run: it never measures and never prints; it starts, collects and pools."""
