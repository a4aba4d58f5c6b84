"""Task generation by gold blueprint: sampled worlds, executed gold chains, rubrics derived from what happened."""
