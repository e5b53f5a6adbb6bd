"""Pure functions of results: the verdict, the comparison of two runs, the CI gates."""
