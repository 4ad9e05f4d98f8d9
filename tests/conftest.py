"""Shared test set-up: this folder is on sys.path, so tests import helpers such as json_compare."""
