"""The transport port (port.py) and its adapters: Kafka (kafka/) and local (local.py)."""
