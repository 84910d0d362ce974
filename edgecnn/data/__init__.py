"""Datasets and preprocessing. Torch-free: numpy and Pillow only."""
