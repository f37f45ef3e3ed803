"""The throwaway-PostgreSQL test harness; conftest.py wires it into fixtures."""
