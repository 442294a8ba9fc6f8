"""How firm SliCK labels are, what budget they need, and how two annotations of the same rows compare."""
