"""Load benchmarks of the reference server, and the peers it is measured against."""
