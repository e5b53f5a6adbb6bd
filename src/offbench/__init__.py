"""offbench: which asyncio offload strategy keeps your event loop responsive, and at what cost."""

__version__ = "0.1.0"

__all__ = ["__version__"]
