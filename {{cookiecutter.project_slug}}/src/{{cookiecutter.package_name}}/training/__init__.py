"""Around one training run, what train.py calls besides the recipe: the starting weights, the run
folder and its checkpoints, several processes (DDP), the LR finder, the final evaluation, and what
the run shows (TensorBoard, report.md, the summary table).

Nothing here imports the recipe modules above it (config.py, model.py, train.py, ...): they hand
over plain values and Lightning objects.
"""
