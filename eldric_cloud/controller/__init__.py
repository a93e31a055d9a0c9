"""Registration with an Eldric-style controller: the worker's side and a reference controller.

Sans-IO parts (no sockets, no clock of their own): ``protocol`` (paths, payloads, the model
hash), ``backoff`` (the retry schedule), ``state`` (registered / unregistered / failing),
``window`` (last-minute request figures), ``system`` (CPU and memory from /proc text),
``registry`` (the reference controller's memory). IO parts: ``client`` (the background task
in the gateway process; ``source`` is what it reads, ``build`` makes one for eldric-cloudd
and moves it when a config reload names another controller) and ``stub`` (the
``eldric-controller-stub`` server). Wire format: docs/controller-protocol.md.
"""
