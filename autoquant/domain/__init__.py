"""The pure core: frozen models and functions. Imports nothing but the stdlib and pydantic."""
