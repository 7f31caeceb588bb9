"""Exports for people outside the product: the pseudonymized, k-anonymous research data set."""
