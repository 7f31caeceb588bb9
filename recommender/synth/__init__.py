"""Synthetic world generator: a seeded, vectorized simulation writing AIF plus a ground-truth directory."""
