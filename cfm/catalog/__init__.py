"""The platform's rules as data: one place for every table and limit.

Pure Python (no Django import): the inspection engine, the pages and the
quota ledger all read these tables. See docs/rules.md.
"""
from .rules import *  # noqa: F401,F403
