"""Your photos: finding them in a dataset folder, opening any image file, checking a folder before
training (``check-data``), decoding small datasets once into memory, and ``download-pets``.

Nothing here imports the recipe modules above it (config.py, data.py, train.py, ...). What check-data
needs imports no PyTorch (only cache.py, image_dataset.py and augmentation.py do, for data.py), so it
starts at once.
"""
