"""The inspection engine: pure Python, no Django import.

    from cfm.inspection import inspect, InspectOptions
    report = inspect("/models/llama-3-8b")
    report.to_dict()  # the JSON of docs/report.md
"""
from .engine import InspectOptions, inspect, inspect_source
from .limits import InspectLimits
from .report import Check, Report
from .sources import Source, SourceError

__all__ = ["inspect", "inspect_source", "InspectOptions", "InspectLimits", "Report", "Check", "Source",
           "SourceError"]
