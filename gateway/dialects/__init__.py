"""Ingress dialects: other APIs' request and answer shapes, translated to and from OpenAI chat.

Each dialect is sans-IO (pure functions and small per-stream state objects) so the handler,
the tests and any future caller share one translation.
"""
