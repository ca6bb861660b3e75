"""The browser playground: a Starlette app over a training thread, and its page in static/.

``deltaprop playground`` serves it (see ``server``); ``app.create_app(session)`` gives the
ASGI app for tests and notebooks. Modules: ``settings`` (the one table of settings),
``features`` and ``data`` (what the network is fed), ``trainer`` (fit's loop, one step at a
time), ``session`` (the thread and the lock), ``frames`` (heatmaps and binary frames),
``export`` (model file and snippet), ``app`` (routes) and ``server`` (uvicorn). Nothing
heavy is imported here: the exported snippet imports ``data`` and ``features`` alone.
"""
