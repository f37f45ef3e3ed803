"""Reads on PostgreSQL streaming replicas, writes on the primary.

servers.py: a replica and its state. checks.py: what each process finds out about
the replicas in the background. router.py: which server a read runs on, and the
WAL position each caller's reads must see (read_after.py, wal.py). sessions.py:
the session factories that route, and move a read to the primary when its replica
fails it (failures.py) or keeps it waiting (deadline.py).
"""
