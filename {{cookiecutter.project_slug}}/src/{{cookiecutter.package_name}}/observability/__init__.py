"""What operators see of the service: traces (tracing.py) and metrics (metrics.py).

The data layer feeds both from db/statements.py (each statement) and db/pools.py
(each pool); the API from api/http_metrics.py and its error answers.
"""
