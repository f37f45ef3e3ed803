"""Benchmarks, run from the project root as modules: `uv run python -m benchmarks.<name>`."""
