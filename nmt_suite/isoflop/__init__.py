"""IsoFLOP profiles (Chinchilla's method 2) for NMT on fairseq: grids, runs, fits and plots."""
