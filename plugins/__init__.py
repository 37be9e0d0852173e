"""Built-in plugins, loaded by name from gateway.yaml: ``plugins/<name>`` exports ``PLUGIN``."""
