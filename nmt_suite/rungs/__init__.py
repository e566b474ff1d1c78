"""The rungs of the baseline ladder: one config each (configs/*.yaml), run end to end by one pipeline
(prepare, train, average, generate, score, plot) into runs/<corpus>/<rung>/ with a results.json per run."""
