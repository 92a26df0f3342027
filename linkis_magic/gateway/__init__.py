"""The embedded Linkis-compatible gateway: tornado HTTP and WebSocket routes, jobs, engines."""
