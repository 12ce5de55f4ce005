"""The HTTP gateway: validates uploads, stores them, enqueues jobs, serves results.

Never imports torch or onnxruntime (``tests/app/test_imports.py`` checks).
"""
