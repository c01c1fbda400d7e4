"""Market data: panels, loaders, point-in-time candidate pools, gates, the synthetic market."""
