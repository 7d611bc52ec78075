"""Exercise checks, one module per notebook (``c1_1.py`` for notebook 1.1, ...).

Each module registers its checks with :func:`llmbook.exercises.exercise`.
"""
