"""The DT_NEEDED names of an ELF shared library, read from the file itself
(no ldd, no readelf). Imported by _lib (which preloads the CUDA libraries
libkiln.so needs) and loaded on its own by setup.py (which bundles the
libraries libkiln.so needs into the wheel): no side effects, no imports of
the package.
"""
import struct


def elf_needed(path):
    """The DT_NEEDED names of a 64-bit little-endian ELF file, or None when
    it cannot be read as one (read from the section headers, whose .dynamic
    names its string table)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:6] != b"\x7fELF\x02\x01":
                return None
            shoff, = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
            if not shoff or shentsize < 64 or not 0 < shnum < 65536:
                return None
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            sections = [struct.unpack_from("<IIQQQQI", table, i * shentsize) for i in range(shnum)]
            needed = []
            for _, kind, _, _, offset, size, link in sections:
                if kind != 6:  # SHT_DYNAMIC
                    continue
                _, _, _, _, str_off, str_size, _ = sections[link]
                f.seek(str_off)
                strings = f.read(str_size)
                f.seek(offset)
                dyn = f.read(size)
                for k in range(0, len(dyn) - 15, 16):
                    tag, val = struct.unpack_from("<qQ", dyn, k)
                    if tag == 0:  # DT_NULL
                        break
                    if tag == 1:  # DT_NEEDED
                        needed.append(strings[val:strings.index(b"\0", val)].decode())
            return needed
    except (OSError, struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None
