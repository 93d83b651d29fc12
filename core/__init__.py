"""The bottom layer: the table contract between connectors and the planner, and the error vocabulary.
Every other package may import ``core``; ``core`` imports nothing of ours."""
