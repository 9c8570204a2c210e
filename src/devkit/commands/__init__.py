"""One module per devkit subcommand; each exposes one function returning an exit code."""
