"""Local PostgreSQL machinery, fenced off from the service: finding the server
binaries, the account the server runs as, processes and pid files, a private
cluster, and the embedded default the CLI uses. The service's own code (db/, api/)
never imports it; the CLI, the test harness and the benchmarks do.
"""
