"""Achievements Interchange Format (AIF) v1: reading, validating, quarantining and writing datasets."""
