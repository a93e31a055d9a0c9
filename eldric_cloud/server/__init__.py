"""How eldric-cloudd runs its ASGI server: limits as bytes arrive, slow clients, drain and restart.

``daphne_server`` runs Daphne (the default) with our own HTTP protocol subclass; ``uvicorn_server``
runs uvicorn with the same limits where uvicorn allows. Both share ``limits``, ``listener`` and ``drain``.
"""
