"""Criteria registered by this plugin (``--criterion NAME``)."""
