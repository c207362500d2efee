"""api.request: the verbs every kind shares."""
