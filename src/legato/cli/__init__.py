"""The `legato` command line: a thin Typer adapter over the core, the store and the drivers."""
