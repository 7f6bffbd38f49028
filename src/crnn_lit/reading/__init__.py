"""Reading word images with a trained model: ``Recognizer`` (the one reading pipeline every tool uses), the torch
and ONNX Runtime back ends and width batching (``inference``), the real_train hold-out reader (``holdout``)."""
