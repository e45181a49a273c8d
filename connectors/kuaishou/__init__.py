"""Kuaishou shop (快手电商开放平台): orders pulled by update time with the platform's cursor."""
