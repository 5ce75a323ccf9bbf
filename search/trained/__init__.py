"""A trained model's folder (what ``cnnsearch train --out DIR`` writes): its manifest
(``model.json``: preprocessing, class names, input shape, provenance), its weights as
safetensors, a portable copy (ONNX, TorchScript, torch.export) and the numbers of its model
card; read back by ``cnnsearch predict`` and ``cnnsearch package``."""
