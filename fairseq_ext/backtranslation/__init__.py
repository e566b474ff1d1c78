"""Back-translation (issue 6): reverse-model generation in resumable shards, filtering,
tagging, noising and assembly of the boss training set.

Modules, one per concept:

- :mod:`.files`     — atomic writes and content hashes shared by the stages;
- :mod:`.shards`    — how the monolingual corpus is cut into chunks and shards, and the
                      on-disk record format of generated chunks;
- :mod:`.decoding`  — the decoding choices (beam, sampling, top-k, beam + noise);
- :mod:`.generate`  — CLI: one shard job (fairseq's generation API, our plugin loaded);
- :mod:`.merge`     — CLI: all chunks -> one file in original sentence order;
- :mod:`.noise`     — Edunov et al. (2018) source-side noise;
- :mod:`.filters`   — rules that drop bad synthetic pairs, each with its reason;
- :mod:`.leakage`   — valid/test sentences never reach the training set;
- :mod:`.tagging`   — the reserved ``<BT>`` token of tagged back-translation;
- :mod:`.oracle`    — CLI: the real English of the monolingual sentences (upper bound);
- :mod:`.build`     — CLI: real + synthetic -> binarized boss training set;
- :mod:`.boss`      — CLI: the stages of ``scripts/run_boss.sh``.

None of them registers fairseq components, so the plugin's ``__init__`` does not import them.
"""
