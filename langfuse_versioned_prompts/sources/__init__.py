"""The resolution layers: memory (L1), Redis (L2), Langfuse (L3), local files (L4)."""
