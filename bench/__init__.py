"""Benchmarks of fairseq_ext against stock fairseq (issue 7). Run ``python -m bench --help``."""
