"""Rule files (one TOML per rule id), shipped inside the package as analyzer.rules."""
