"""Optimizers registered by this plugin (``--optimizer NAME``)."""
