"""utils: the working code behind the Bedrock fine-tuning workshop notebooks.

One module per concern; importing ``utils`` (or any submodule) has no side
effects: no clients, no network, no environment reads, no random names.
"""

__version__ = "0.1.0"
