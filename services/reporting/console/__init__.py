"""The console at ``/console/``: the reports and one lead's story for people, server-rendered.

Every asset (the stylesheet; charts are inline SVG drawn here) ships in this package, so the
console works with no internet. Login exchanges the API token for an HttpOnly, SameSite=Strict
session cookie; every form that writes carries a CSRF token checked against its cookie.
"""
