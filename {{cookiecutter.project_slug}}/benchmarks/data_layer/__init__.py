"""The data-layer benchmark (runner.py says what it measures): `python -m benchmarks.data_layer`.

It measures the example models, so it is a package of its own, which a project
generated without them does not have.
"""
