"""Feature builders: pure functions from the achievements graph to arrays and sparse matrices."""
