"""Digital signage screens: a pure renderer (``render``) and the player that joins it to the store.

``signage.render.render(item, profile)`` turns one playlist item into a
Pillow image; ``signage.player`` runs a screen (device session, playlist,
spotlight commands, proof of play). The screen talks to the store only
through ``contract/`` and MQTT.
"""
