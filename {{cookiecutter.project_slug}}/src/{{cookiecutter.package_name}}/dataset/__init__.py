"""Your photos: finding them in a dataset folder, opening any image file, checking a folder before
training (``check-data``), decoding small datasets once into memory, and ``download-pets``.

Nothing here imports the recipe modules above it (config.py, data.py, train.py, ...), and only
``cache.py`` imports PyTorch, so ``check-data`` starts at once.
"""
