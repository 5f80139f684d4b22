"""The composition root: the one package that knows every service (see docs/architecture.md).

The kernel (the rest of ``leadrelay``) and the services never import it; it imports both.
"""
