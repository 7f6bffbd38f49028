"""Training around Lightning: ``CRNNSystem`` (CTC loss, metrics, optimizers), the callbacks, resume and DDP under
Hydra (``runtime``), W&B and CSV tracking, multirun summaries (``sweep``). ``python -m crnn_lit.train`` wires them."""
