"""The run folder (runs/<name>/) and its checkpoints: making it, writing into it whole, finding an earlier
run (``--resume``, ``predict``, ``export``), and checkpoints that a crash never leaves half-written.

Nothing here imports the recipe modules above it; it uses training/processes.py (which process writes).
"""
