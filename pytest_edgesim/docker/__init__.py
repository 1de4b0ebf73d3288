"""The Docker tier: images built without a registry, labelled containers, and their cleanup.

Modules: ``labels`` (session id and labels), ``engine`` (connecting to Docker),
``images`` (build contexts and cached builds), ``debian_base`` (a base image made without a
registry), ``broker`` (a Mosquitto container), ``cleanup`` (reaping what dead sessions left).
Nothing here is imported by the core.
"""
