"""A zoo of deliberately broken chatwire/1 servers, each a small variation of the reference
server, used to prove that the conformance suite catches each fault by the right requirement."""
