"""
C{python -m pingproto}: the same as the C{pingproto} command.
"""

from pingproto.cli import entry_point

entry_point()
