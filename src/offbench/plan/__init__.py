"""From what the user said to the matrix: options, scenario files, interpreters, validated settings, cells."""
