"""Rendering: terminal tables, charts and the design-review report."""
