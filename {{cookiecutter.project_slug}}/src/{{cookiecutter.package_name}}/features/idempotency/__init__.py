"""Idempotency keys: a client that retries an unsafe request (a timeout, a dropped
connection) with the same `Idempotency-Key` gets the first answer again, and the work
is done once.

The answer is stored in the transaction that did the work, so a crash between the two
leaves neither. A duplicate that arrives while the first is still running waits for it
(the key's row is locked until the first commits) and then answers the same. Only
successful answers are stored: a refused request changed nothing, and its retry runs
again. Keys expire after IDEMPOTENCY_TTL seconds.
"""
