"""Exporters: one module per router target."""
