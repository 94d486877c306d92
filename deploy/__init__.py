"""Deployment recipes for serving a class: HAProxy in front of several replicas (``make class``), containers."""
