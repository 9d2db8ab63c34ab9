"""The HTTP/1.1 client, layered.

Sans-IO core (bytes in, events or bytes out; no sockets, no loop, no clock):
``_url``, ``_headers``, ``_parser``, ``_request``, ``_decoders``,
``_redirects``, ``_prepare`` (a request's arguments made ready to send),
``_exchange`` (the states of one exchange).  I/O layer on top: ``_tls``
(contexts), ``_receive`` (body receive paths), ``_connection`` (one
``asyncio.Protocol`` per connection), ``_connector`` (opening connections),
``_pool`` (keep-alive), ``_models`` (``Response`` and options),
``_dispatch`` (one request on a pooled connection) and ``_client``
(``HTTPClient``).  Public names are re-exported by ``asyncnet``.
"""
