"""Training: configuration, the generator and GAN steps, checkpoints with exact resume, DDP."""
