"""Hydra launcher `gpu_pool`: run sweep jobs side by side, one GPU each (see gpu_pool_launcher.py)."""
