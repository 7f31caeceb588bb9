"""Roadmap indicators of the program: computed from the achievements graph, reported as JSON and plots."""
