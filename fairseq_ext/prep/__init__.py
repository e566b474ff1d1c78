"""Corpus preparation: sources -> cleaning -> filters -> sentencepiece -> fairseq binarization.

``scripts/prepare_data.py`` is the command line (:mod:`fairseq_ext.prep.cli`); the layout it
writes under ``data/<corpus>/`` is described in :mod:`fairseq_ext.prep.pipeline`.
"""
