"""What a run shows: TensorBoard's pictures and tables, the final scores in metrics.json, report.md, and
what train prints. Nothing here decides how the model trains; skip it until you want to change a picture.

Nothing here imports the recipe modules above it (config.py, model/, train.py, ...).
"""
