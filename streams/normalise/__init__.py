"""Normalisation: raw platform records -> canonical Avro events or dead-letter rejections."""
