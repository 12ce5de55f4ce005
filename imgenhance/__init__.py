"""imgenhance: self-hosted image enhancement behind one HTTP API.

This package holds what the gateway (``app``), the workers (``worker``) and the
training code (``training``) share: settings, the model-card schema, the job
contract, and the command line. It imports neither torch nor onnxruntime.
"""

__version__ = "0.1.0"
REDIS_NAMESPACE = "imgenhance"  # the prefix of every Redis key the project writes beside RQ's
