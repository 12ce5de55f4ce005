"""RQ workers that run the models with ONNX Runtime. Never imports torch."""
