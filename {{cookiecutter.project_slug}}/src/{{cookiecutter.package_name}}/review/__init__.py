"""``review``: find the photos whose label is probably wrong (scores.py), fix them on a page (page.py)
or from a CSV, and move files so that nothing is ever lost (changes.py)."""
