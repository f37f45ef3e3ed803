"""`python -m benchmarks.data_layer` runs the benchmark (see the package's docstring)."""

from benchmarks.data_layer.runner import main

main()
