"""Outputs of the framework alignment report: CSV, JSON, printable HTML, PDF, OSCAL, and stored snapshots."""
