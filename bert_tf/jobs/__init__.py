"""The scripts' jobs: one module per script, each an options dataclass (its flags) and a
`run` (see docs/ARCHITECTURE.md); `stages.py` holds what the training jobs share."""
