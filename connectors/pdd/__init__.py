"""Pinduoduo (拼多多开放平台): order increments pulled by update time, paged backwards."""
