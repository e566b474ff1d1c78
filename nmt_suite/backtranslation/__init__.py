"""Back-translation: reverse-model generation in resumable shards, filtering, tagging,
noising and assembly of the boss training set.

Modules, one per concept:

- :mod:`.shards`            — how the monolingual corpus is cut into chunks and shards, and the
                              on-disk record format of generated chunks;
- :mod:`.decoding`          — the decoding choices (beam, sampling, top-k, beam + noise);
- :mod:`.generate`          — CLI: one shard job (fairseq's generation API, the plugin loaded);
- :mod:`.merge`             — CLI: all chunks -> one file in original sentence order;
- :mod:`.noise`             — Edunov et al. (2018) source-side noise;
- :mod:`.synthetic_filters` — rules that drop bad synthetic pairs, each with its reason;
- :mod:`.leakage`           — valid/test sentences never reach the training set;
- :mod:`.tagging`           — the reserved ``<BT>`` token of tagged back-translation;
- :mod:`.oracle`            — CLI: the real English of the monolingual sentences (upper bound);
- :mod:`.build`             — CLI: real + synthetic -> binarized boss training set;
- :mod:`.boss`              — CLI: the stages of ``scripts/run_boss.sh``.

Files are written through :mod:`nmt_suite.files`; whether a generation, a training set or an
oracle is up to date for its inputs is decided by :mod:`nmt_suite.stage_cache`.
"""
