"""Readers (and a few writers) of the real formats the field publishes.

Each reader streams records as the dataclasses of :mod:`instructprotein.formats.records`,
reports bad input as :class:`~instructprotein.errors.InputError` with file and line, and
knows nothing of knowledge graphs or models.
"""
