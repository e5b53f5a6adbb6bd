"""The vocabulary and the results file: what every other layer reads and writes; imports none of them."""
