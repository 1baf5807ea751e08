"""All absl flag definitions, one function per command line (docs/conventions.md, 1).

Library code never reads flags: each `define_*` function registers a CLI's flags and each
`*_config_from_flags` turns their values into the config objects that are passed down.
"""
