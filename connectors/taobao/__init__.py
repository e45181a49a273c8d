"""Taobao / Tmall via the Taobao Open Platform (TOP)."""
