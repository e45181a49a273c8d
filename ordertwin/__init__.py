"""ordertwin: a live digital twin of every e-commerce order, on Kafka."""

__version__ = "0.1.0"
