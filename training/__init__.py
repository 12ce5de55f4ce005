"""Training, evaluation and export of the models the service ships.

This is the only package that imports torch and the only writer of ``models/``.
"""
