"""What runs in and around kernels: the data client (later: widgets, run context, pool)."""
