"""An example feature: users, and the posts they write.

It shows keyset pages, loading a relationship in a fixed number of queries, an
enum column, and bulk writes. Delete this folder, its tests and its migrations
to start from a clean slate.
"""
