"""Thin click commands over the library; each command imports the library in its body."""
