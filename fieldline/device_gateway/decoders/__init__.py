"""One module per payload format, each a pure `decode(topic, payload) -> list[Message]`.

A decoder raises `messages.DecodeError` for a payload it cannot use and returns an empty list
for one that is valid but carries nothing to store. `topics.py` maps topic patterns to them.
"""
