"""Using the trained model outside training: what ``predict`` prints and saves, exported bundles
(``export``: ONNX or TorchScript, checked against PyTorch), the web demo, and the Hugging Face Space.

Nothing here imports the recipe modules above it: ``predict.load_classifier`` loads the model, and
the command line hands it over.
"""
