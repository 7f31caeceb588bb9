"""Services behind the routers: the logic of each answer, kept out of the route handlers."""
