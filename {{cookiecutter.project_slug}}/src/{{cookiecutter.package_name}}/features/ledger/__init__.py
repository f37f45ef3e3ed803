"""An example feature: accounts, and transfers of money between them.

It shows a business rule that spans rows, row locks taken in a fixed order, and
a unit of work retried when PostgreSQL cancels it to break a conflict.
"""
