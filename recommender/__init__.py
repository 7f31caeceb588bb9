"""Domain core of the trajectory recommender: schema, AIF, store, graph, synthetic world, metrics."""

__version__ = "0.1.0"
