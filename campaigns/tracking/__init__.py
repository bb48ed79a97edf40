"""Open, click and unsubscribe tracking (docs/tracking.md): signed tokens, the links the sender
puts in messages, the fast endpoints and the Redis event buffer."""
