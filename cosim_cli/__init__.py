"""The ``cosim`` command: argument parsing, printing and exit codes.

It calls the library (:mod:`cosim`); the library never imports it.
"""
