"""The KV server that runs in every container. Imports nothing of the harness."""
