"""The operator surface: one command layer and its faces (the CLI), inspection, trace, render, doctor,
the log view."""
