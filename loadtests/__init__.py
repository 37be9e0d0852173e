"""Load, chaos and demo tooling for the gateway: simulated upstreams and benchmarks."""
