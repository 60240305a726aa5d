"""The DFN4 network, its layers, streaming state and checkpoints."""
