"""Live requests: TF Serving's REST and gRPC APIs on an exported SavedModel (serve.py)."""
