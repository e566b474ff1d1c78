"""Run orchestration for the baseline ladder: configs, stages, averaging, evaluation, results (PIPE)."""
