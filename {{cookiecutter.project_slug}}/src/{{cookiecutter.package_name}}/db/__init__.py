"""Database plumbing: declarative base, engines, sessions and the local cluster."""
