"""Serialink's GS1 core: the Digital Link parser/builder, element strings, check
digits and AI validation, driven by the GS1 Barcode Syntax Dictionary and
compiled with Cython. Everything else in Serialink calls into this package.
"""
