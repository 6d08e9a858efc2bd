"""e4e training: the paper's recipe (progressive offsets, delta regularization, latent discriminator)."""
