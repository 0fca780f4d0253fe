"""The sandbox's Bedrock control plane and runtime, one module per resource family.

See ``utils/sandbox/README.md`` ("Layout") for each module's job. :class:`Bedrock` in
``service.py`` is the entry point.
"""
