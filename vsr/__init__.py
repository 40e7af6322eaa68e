"""vsr: learned super-resolution for video and images.

Importing this package is cheap: torch, PyAV, engines and training load only
when a command needs them.
"""

__version__ = "0.1.0"
