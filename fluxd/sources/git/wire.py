"""The wire formats git signatures are made of, shared by signing and verification.

ASCII armor's CRC-24 (RFC 4880 §6.1), OpenPGP packet framing in both header formats
(including partial body lengths) and multiprecision integers, and the SSH wire string.
Malformed input raises :class:`MalformedData`; each caller says it in its own words.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["MalformedData", "crc24", "packets", "read_mpi", "ssh_string"]


class MalformedData(ValueError):
    """OpenPGP data that cannot be read; the message says where it breaks."""


def crc24(data: bytes) -> int:
    """The CRC-24 of armored OpenPGP data (its ``=XXXX`` checksum line)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(tag, body)`` of each OpenPGP packet in ``data``."""
    i = 0
    while i < len(data):
        ctb = data[i]
        i += 1
        if not ctb & 0x80:
            raise MalformedData("bad OpenPGP packet header")
        if ctb & 0x40:
            tag = ctb & 0x3F
            body = bytearray()
            while True:
                if i >= len(data):
                    raise MalformedData("truncated OpenPGP packet")
                first = data[i]
                if first < 192:
                    length, i = first, i + 1
                elif first < 224:
                    length, i = ((first - 192) << 8) + data[i + 1] + 192, i + 2
                elif first == 255:
                    length, i = int.from_bytes(data[i + 1 : i + 5], "big"), i + 5
                else:  # partial body chunk, more length headers follow
                    chunk = 1 << (first & 0x1F)
                    body += data[i + 1 : i + 1 + chunk]
                    i += 1 + chunk
                    continue
                body += data[i : i + length]
                i += length
                break
            packet = bytes(body)
        else:
            tag, length_type = (ctb >> 2) & 0x0F, ctb & 0x03
            if length_type == 3:
                length, size = len(data) - i, 0
            else:
                size = 1 << length_type
                length = int.from_bytes(data[i : i + size], "big")
            packet = data[i + size : i + size + length]
            i += size + length
        if i > len(data):
            raise MalformedData("truncated OpenPGP packet")
        yield tag, packet


def read_mpi(data: bytes, i: int) -> tuple[int, int]:
    """The multiprecision integer at ``data[i:]`` and the offset after it."""
    if i + 2 > len(data):
        raise MalformedData("truncated OpenPGP number")
    end = i + 2 + (int.from_bytes(data[i : i + 2], "big") + 7) // 8
    if end > len(data):
        raise MalformedData("truncated OpenPGP number")
    return int.from_bytes(data[i + 2 : end], "big"), end


def ssh_string(value: bytes) -> bytes:
    """``value`` as an SSH wire string: its 4-byte length, then itself."""
    return len(value).to_bytes(4, "big") + value
