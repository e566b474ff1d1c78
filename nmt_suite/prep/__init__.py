"""Corpus preparation: sources -> cleaning -> filters -> sentencepiece -> fairseq binarization.

The command line is :mod:`nmt_suite.prep.cli` (``scripts/prepare_data.py``, console script
``fairseq-ext-prepare``); the layout it writes under ``data/<corpus>/`` is described in
:mod:`nmt_suite.prep.prepare`, its step cache in :mod:`nmt_suite.prep.workspace`.
"""
