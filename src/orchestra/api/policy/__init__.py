"""api.policy: per-kind rules."""
