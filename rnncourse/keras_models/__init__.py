"""Keras models built in the application chapters, one module per application.

Import a module here only after `rnncourse.repro.setup_tensorflow()` has run, so that
TensorFlow starts with the course's pinned, reproducible settings.
"""
