"""Entity resolution: the same person across sources merged into one participant, with an audit trail."""
