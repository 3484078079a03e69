"""Around one training run, what train.py calls besides the recipe: several processes (DDP),
Lightning's chatter turned down, the images-per-second measurement and the LR finder.

Nothing here imports the recipe modules above it (config.py, model/, train.py, ...): they hand
over plain values and Lightning objects.
"""
