"""Real execution sandboxes: Docker containers built locally, limited, pooled and reaped."""
