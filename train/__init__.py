"""vsr's trainers: ``python -m train CONFIG.toml`` (see train/loop.py)."""
