"""Learning embeddings from triplets and evaluating them."""
