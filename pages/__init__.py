"""Public HTML pages served by yizhan: the rider's page (the nearest open station on a phone) and each station's
own page (hours, amenities, phone, navigation, a QR code for the door).

Pages are an entry point beside the JSON routes: they read the same registry and answer in Chinese first with
English beside. Their scripts and styles are files under ``pages/static`` served by the app itself, and the map
uses the Leaflet the planners' maps already ship; nothing is loaded from another host.
"""
