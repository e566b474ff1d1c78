"""Benchmarks of fairseq_ext against stock fairseq. Run ``python -m nmt_suite.bench --help``."""
