"""The official Sparkplug B protobuf schema and the Python code generated from it."""
