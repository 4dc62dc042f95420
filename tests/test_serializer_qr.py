"""The proof QR path makes exactly segno's symbol (module for module, same mask)."""

from __future__ import annotations

import segno
from hypothesis import given, settings
from hypothesis import strategies as st

from serializer.qr import QrEncoder

ENCODER = QrEncoder("m")


def same_as_segno(payload: str) -> None:
    ours = ENCODER.encode(payload)
    ref = segno.make_qr(payload, error="m")
    assert (ours.version, ours.mask, ours.error) == (ref.version, ref.mask, ref.designator.split("-")[1])
    assert ours.rows() == tuple(bytes(r) for r in ref.matrix)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=12, max_size=20),
       st.sampled_from(["", "/10/LOT12345", "/10/A%2FB"]), st.booleans())
def test_dl_uris_match_segno(serial, lot, expiry):
    same_as_segno(f"https://id.gs1.org/01/09506000134352{lot}/21/{serial}" + ("?17=271231" if expiry else ""))


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_any_text_matches_segno(text):
    same_as_segno(text)


def test_every_version_range_and_numeric_mode():
    for n in (1, 20, 60, 150, 300, 600, 1200):
        same_as_segno("9" * n)
        same_as_segno("HTTPS://ID.GS1.ORG/" + "A" * n)
