"""A local stand-in for www.dw.com, api.dw.com and static.dw.com, built from feed dumps (see docs/standin.md)."""
