"""The public contract: generated gRPC code (``api.pb``), proto ⇄ Python codecs, the client
and admin token files. Every package that speaks the protocol uses it; it imports no server
module."""
